// npm run bench: GET /token against a bare Fastify route, the single-flight
// burst, and a million-request memory run. Prints figures; asserts nothing.
//
//   node bench/run.mjs [--rounds 5] [--duration 5] [--connections 10]
//                      [--burst 1000] [--requests 1000000] [--write docs/benchmarks.md]
import { spawn } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Agent, request } from 'undici'
import { startStandIn } from './stand-in.mjs'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '5' },
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '10' },
    burst: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '1000000' },
    write: { type: 'string' }
  }
})
const ROUNDS = Number(args.rounds)
const DURATION = Number(args.duration)
const CONNECTIONS = Number(args.connections)
const BURST = Number(args.burst)
const REQUESTS = Number(args.requests)

const CLI = new URL('../dist/cli.js', import.meta.url).pathname
const BASELINE = new URL('./baseline.mjs', import.meta.url).pathname
const SECRET = 'bench-sidecar-secret-0123456789abcdef0123456789'
const CLIENT = { clientId: 'bench-client', clientSecret: 'bench-client-secret' }
const auth = { authorization: `Bearer ${SECRET}` }

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  const m = Math.floor(s.length / 2)
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2
}
const mb = (kb) => Math.round(kb / 102.4) / 10

/** VmRSS and VmHWM (peak) of a process, in kB, from /proc. */
function memory (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)[1])
  return { rss: field('VmRSS'), peak: field('VmHWM') }
}

/** Starts a process and resolves once its first stdout line matching `ready` appears. */
function startProcess (argv, env, ready) {
  const child = spawn(process.execPath, argv, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
  return new Promise((resolve, reject) => {
    let buffered = ''
    child.once('exit', (code) => reject(new Error(`${argv.join(' ')} exited with ${code}`)))
    child.stdout.setEncoding('utf8').on('data', (chunk) => {
      buffered += chunk
      const lines = buffered.split('\n')
      buffered = lines.pop()
      for (const line of lines) {
        const value = ready(line)
        if (value !== undefined) {
          child.removeAllListeners('exit')
          resolve({ child, value })
        }
      }
    })
  })
}

async function startSidecar (standIn, extraEnv = {}) {
  const { child, value: port } = await startProcess([CLI], {
    TOOLBRIDGE_AUTH0_CLIENT_ID: CLIENT.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: CLIENT.clientSecret,
    TOOLBRIDGE_AUTH0_TOKEN_URL: standIn.tokenUrl,
    TOOLBRIDGE_SIDECAR_SECRET: SECRET,
    TOOLBRIDGE_SIDECAR_PORT: '0',
    ...extraEnv
  }, (line) => {
    const match = /"msg":"Server listening at http:\/\/127\.0\.0\.1:(\d+)"/.exec(line)
    return match === null ? undefined : Number(match[1])
  })
  return { child, url: `http://127.0.0.1:${port}` }
}

async function stop (child) {
  const exited = new Promise((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM')
  await exited
}

async function waitForToken (url) {
  for (let i = 0; i < 500; i++) {
    const res = await request(`${url}/healthz`)
    await res.body.dump()
    if (res.statusCode === 200) return
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  throw new Error('the sidecar never got a token')
}

function load (url, headers, opts) {
  return autocannon({ url, headers, connections: CONNECTIONS, ...opts })
}

function summary (result) {
  return {
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx
  }
}

async function throughput () {
  const standIn = await startStandIn({ ...CLIENT, expiresIn: 86400 })
  const sidecar = await startSidecar(standIn)
  await waitForToken(sidecar.url)
  const sample = await request(`${sidecar.url}/token`, { headers: auth })
  const bytes = Buffer.byteLength(await sample.body.text())
  const { child: baselineChild, value: baseline } = await startProcess([BASELINE, String(bytes)], {}, (line) => line.startsWith('{') ? JSON.parse(line) : undefined)
  const baselineUrl = `http://127.0.0.1:${baseline.port}`

  // Warm both up (JIT, connection pools) before measuring.
  await load(`${sidecar.url}/token`, auth, { duration: 1 })
  await load(`${baselineUrl}/token`, {}, { duration: 1 })

  const rounds = []
  for (let i = 0; i < ROUNDS; i++) {
    const side = summary(await load(`${sidecar.url}/token`, auth, { duration: DURATION }))
    const base = summary(await load(`${baselineUrl}/token`, {}, { duration: DURATION }))
    rounds.push({ side, base, ratio: side.rps / base.rps })
    process.stderr.write(`round ${i + 1}/${ROUNDS}: sidecar ${Math.round(side.rps)} req/s, baseline ${Math.round(base.rps)} req/s\n`)
  }
  const peak = memory(sidecar.child.pid).peak
  await stop(sidecar.child)
  await stop(baselineChild)
  await standIn.close()
  const agg = (pick) => ({
    rps: median(rounds.map((r) => pick(r).rps)),
    p50: median(rounds.map((r) => pick(r).p50)),
    p99: median(rounds.map((r) => pick(r).p99)),
    errors: rounds.reduce((n, r) => n + pick(r).errors, 0),
    non2xx: rounds.reduce((n, r) => n + pick(r).non2xx, 0)
  })
  return { bytes, sidecar: agg((r) => r.side), baseline: agg((r) => r.base), ratios: rounds.map((r) => r.ratio), peakKb: peak, upstream: standIn.count() }
}

/**
 * The token expires while its refresh is still in flight (lifetime 6 s, the
 * shortest the sidecar accepts is 5 s; refresh at 3 s; the stand-in holds that
 * answer 3.5 s); a burst of requests arrives in the gap and must all be
 * answered from one upstream request.
 */
async function burst () {
  const standIn = await startStandIn({ ...CLIENT, expiresIn: 6, delays: { 2: 3500 } })
  const sidecar = await startSidecar(standIn, { TOOLBRIDGE_REFRESH_BUFFER_SECONDS: '3' })
  await waitForToken(sidecar.url)
  for (;;) {
    const res = await request(`${sidecar.url}/healthz`)
    const body = await res.body.json()
    if (res.statusCode === 503 && standIn.count() === 2) break
    if (body.status === 'ok' && standIn.count() > 2) throw new Error('the refresh finished before the token expired')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  const agent = new Agent({ connections: BURST, pipelining: 0 })
  const started = performance.now()
  let lastMs = 0
  const statuses = await Promise.all(Array.from({ length: BURST }, async () => {
    const res = await request(`${sidecar.url}/token`, { headers: auth, dispatcher: agent })
    await res.body.dump()
    lastMs = Math.max(lastMs, performance.now() - started)
    return res.statusCode
  }))
  // Every token request after the start-up one: the refresh that was in flight when the burst arrived.
  const upstream = standIn.count() - 1
  await agent.close()
  await stop(sidecar.child)
  await standIn.close()
  return { requests: BURST, ok: statuses.filter((s) => s === 200).length, upstream, lastMs: Math.round(lastMs) }
}

async function soak () {
  const standIn = await startStandIn({ ...CLIENT, expiresIn: 86400 })
  const sidecar = await startSidecar(standIn)
  await waitForToken(sidecar.url)
  await load(`${sidecar.url}/token`, auth, { amount: Math.min(20_000, REQUESTS) })
  const before = memory(sidecar.child.pid)
  const result = await load(`${sidecar.url}/token`, auth, { amount: REQUESTS })
  const after = memory(sidecar.child.pid)
  await stop(sidecar.child)
  await standIn.close()
  return { requests: result.requests.total, errors: result.errors + result.timeouts, non2xx: result.non2xx, before, after, upstream: standIn.count() }
}

const tp = await throughput()
const bu = await burst()
const so = await soak()

const ratio = median(tp.ratios)
const machine = `${cpus().length} × ${cpus()[0].model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}, ${process.platform}`
const command = `node bench/run.mjs --rounds ${ROUNDS} --duration ${DURATION} --connections ${CONNECTIONS} --burst ${BURST} --requests ${REQUESTS}`
const row = (name, s, extra) => `| ${name} | ${Math.round(s.rps)} | ${s.p50} | ${s.p99} | ${s.errors} | ${s.non2xx} | ${extra} |`
const report = `## GET /token throughput (${ROUNDS} rounds × ${DURATION} s, ${CONNECTIONS} connections, alternating)

| target | req/s (median) | p50 ms | p99 ms | errors | non-2xx | notes |
|---|---|---|---|---|---|---|
${row('sidecar (`GET /token`, info logging)', tp.sidecar, `peak RSS ${mb(tp.peakKb)} MB; ${tp.upstream} upstream token request(s)`)}
${row('bare Fastify route, same body size', tp.baseline, `${tp.bytes}-byte JSON body, no auth, no logger`)}

Throughput ratio sidecar ÷ baseline: **${ratio.toFixed(3)}** (median of per-round ratios: ${tp.ratios.map((r) => r.toFixed(3)).join(', ')})

## Single flight under a burst

| concurrent GET /token while the token is expired and its refresh in flight | answered 200 | upstream token requests since expiry | last answer after |
|---|---|---|---|
| ${bu.requests} | ${bu.ok} | ${bu.upstream} | ${bu.lastMs} ms |

## Memory over ${REQUESTS.toLocaleString('en-US')} requests

| requests | errors | non-2xx | RSS before | RSS after | peak RSS | upstream token requests |
|---|---|---|---|---|---|---|
| ${so.requests} | ${so.errors} | ${so.non2xx} | ${mb(so.before.rss)} MB | ${mb(so.after.rss)} MB | ${mb(so.after.peak)} MB | ${so.upstream} |
`
process.stdout.write(`${report}\nmachine: ${machine}\n`)

if (args.write !== undefined) {
  writeFileSync(args.write, `# Benchmarks

Written by \`npm run bench -- --write docs/benchmarks.md\` on ${new Date().toISOString().slice(0, 10)}; every figure comes from that run.

- Machine: ${machine}
- Command: \`npm run build && ${command}\`
- The sidecar runs as users run it (\`node dist/cli.js\`, \`LOG_LEVEL\` info) against a loopback Auth0 stand-in; autocannon drives it from the benchmark process.

${report}`)
}
