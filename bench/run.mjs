// npm run bench: CPU per GET /token against a bare Fastify route in paired
// rounds at a fixed offered rate; start-up, idle and high-water memory over a
// million requests, and the health probe's cost, each against its reference
// in the same rounds (bench/lean.mjs); the single-flight burst, the secret
// comparison, the credential-injecting proxy against direct calls and nginx
// (bench/proxy.mjs), and a fleet sharing one token through Redis (bench/fleet.mjs).
// Two baselines in the CPU rounds: bare Fastify (its defaults, no logger) and
// the same app running prom-client's collectDefaultMetrics() (bench/baseline.mjs).
// Prints figures; asserts nothing.
//
//   node bench/run.mjs [--rounds 7] [--duration 10] [--warmup 2] [--rate 4000] [--connections 10]
//                      [--starts 11] [--memory-rounds 2] [--probes 11] [--before path/to/old/cli.js]
//                      [--burst 1000] [--requests 1000000]
//                      [--proxy-rounds 7] [--proxy-requests 5000]
//                      [--fleet 1,5,20] [--fleet-restarts 2] [--fleet-lifetimes 1] [--fleet-lifetime 60]
//                      [--skip cpu,lean,burst,proxy,fleet] [--write docs/benchmarks.md]
//   node bench/run.mjs --cpu-only …     only the paired CPU rounds, printed
//   node bench/run.mjs --proxy-only …   only the proxy rounds, printed
// BENCH_NGINX=/path/to/nginx picks the nginx binary, BENCH_NGINX=none leaves nginx out;
// without it the system's nginx is used, or the comparison is skipped with a note.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, totalmem } from 'node:os'
import { parseArgs } from 'node:util'
import autocannon from 'autocannon'
import { Agent, request } from 'undici'
import { cpuMicros, memory, PINNED, spawnNode } from './proc.mjs'
import { startStandIn } from './stand-in.mjs'
import { fleetScenario, fleetTable } from './fleet.mjs'
import { proxyScenario, proxyTable } from './proxy.mjs'
import { memoryRounds, probeRounds, servers, startupRounds } from './lean.mjs'
import { median, quantile } from './stats.mjs'
import { SidecarSecret } from '../dist/http/sidecar-secret.js'

const { values: args } = parseArgs({
  options: {
    rounds: { type: 'string', default: '7' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    rate: { type: 'string', default: '4000' },
    connections: { type: 'string', default: '10' },
    starts: { type: 'string', default: '11' },
    'memory-rounds': { type: 'string', default: '2' },
    probes: { type: 'string', default: '11' },
    // An older build's dist/cli.js, measured in the same rounds (the "before" figures).
    before: { type: 'string' },
    // Sections to leave out while iterating: cpu, lean, burst, proxy, fleet.
    skip: { type: 'string', default: '' },
    // Only the paired CPU rounds (to compare builds): prints their table, writes nothing.
    'cpu-only': { type: 'boolean', default: false },
    burst: { type: 'string', default: '1000' },
    requests: { type: 'string', default: '1000000' },
    // Fleet sizes, comma-separated; empty skips the fleet scenario.
    fleet: { type: 'string', default: '1,5,20' },
    'fleet-restarts': { type: 'string', default: '2' },
    'fleet-lifetimes': { type: 'string', default: '1' },
    // Long enough that 20 processes, pinned to one core, start and restart well within one token's life.
    'fleet-lifetime': { type: 'string', default: '60' },
    // The credential-injecting proxy against direct calls and nginx; 0 rounds skips it.
    'proxy-rounds': { type: 'string', default: '7' },
    'proxy-requests': { type: 'string', default: '5000' },
    // Only the proxy scenario, printed (no --write).
    'proxy-only': { type: 'boolean', default: false },
    write: { type: 'string' }
  }
})
const ROUNDS = Number(args.rounds)
const DURATION = Number(args.duration)
const WARMUP = Number(args.warmup)
const RATE = Number(args.rate)
const CONNECTIONS = Number(args.connections)
const STARTS = Number(args.starts)
const MEMORY_ROUNDS = Number(args['memory-rounds'])
const PROBES = Number(args.probes)
const SKIP = new Set(args.skip.split(',').filter(Boolean))
const BURST = Number(args.burst)
const REQUESTS = Number(args.requests)
const PROXY = { rounds: Number(args['proxy-rounds']), requests: Number(args['proxy-requests']) }
const FLEET = { sizes: args.fleet.split(',').filter(Boolean).map(Number), restarts: Number(args['fleet-restarts']), lifetimes: Number(args['fleet-lifetimes']), lifetimeSeconds: Number(args['fleet-lifetime']) }

const CLI = new URL('../dist/cli.js', import.meta.url).pathname
const BASELINE = new URL('./baseline.mjs', import.meta.url).pathname
const SECRET = 'bench-sidecar-secret-0123456789abcdef0123456789'
const CLIENT = { clientId: 'bench-client', clientSecret: 'bench-client-secret' }
const auth = { authorization: `Bearer ${SECRET}` }

const mb = (kb) => Math.round(kb / 102.4) / 10

/** Starts a process on the server core; resolves once a stdout line matching `ready` appears. */
function startProcess (argv, env, ready) {
  const child = spawnNode(argv, env, ['ignore', 'pipe', 'inherit'])
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

async function startSidecar (standIn, extraEnv = {}, cli = CLI) {
  const proxyPort = extraEnv.TOOLBRIDGE_PROXY_PORT
  const { child, value: port } = await startProcess([cli], {
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
  return { child, url: `http://127.0.0.1:${port}`, ...(proxyPort === undefined ? {} : { proxyUrl: `http://127.0.0.1:${proxyPort}` }) }
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

/**
 * One measured run at the fixed offered rate: server CPU time per answered
 * request, from /proc before and after, plus throughput and latency.
 */
async function measured (pid, url, headers) {
  const before = cpuMicros(pid)
  const result = await load(url, headers, { duration: DURATION, overallRate: RATE })
  const cpu = cpuMicros(pid) - before
  return {
    cpuUs: cpu / result.requests.total,
    rps: result.requests.total / DURATION,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx
  }
}

/**
 * Paired rounds: in each, the sidecar and the two baselines (bare Fastify, and
 * bare Fastify with prom-client's default metrics) take the same load one after
 * the other (the order reverses every round), and the round yields one ratio
 * per baseline, baseline CPU per request ÷ sidecar CPU per request. All three
 * get the same requests, the sidecar's Authorization header included (the
 * baselines ignore it; parsing it costs every server the same). Each round
 * starts fresh processes and warms them: two processes of one build differ
 * in CPU per request by up to 10 % (code placement, heap layout), a spread
 * that one process per target for the whole run would carry into every round.
 * With --before, an older build takes the same load in the same rounds.
 */
async function cpuRounds () {
  const standIn = await startStandIn({ ...CLIENT, expiresIn: 86400 })
  const isBaseline = (line) => line.startsWith('{"baseline":true') ? JSON.parse(line) : undefined
  let bytes
  let peak = 0
  const rounds = []
  for (let i = 0; i < ROUNDS; i++) {
    // Whatever fails mid-round (a build that does not start), no process outlives the benchmark.
    const children = []
    try {
      const sidecar = await startSidecar(standIn)
      children.push(sidecar.child)
      await waitForToken(sidecar.url)
      const before = args.before === undefined ? undefined : await startSidecar(standIn, {}, args.before)
      if (before !== undefined) {
        children.push(before.child)
        await waitForToken(before.url)
      }
      if (bytes === undefined) {
        const sample = await request(`${sidecar.url}/token`, { headers: auth })
        bytes = Buffer.byteLength(await sample.body.text())
      }
      const { child: bareChild, value: bare } = await startProcess([BASELINE, String(bytes)], {}, isBaseline)
      children.push(bareChild)
      const { child: metricsChild, value: withMetrics } = await startProcess([BASELINE, String(bytes), '--metrics'], {}, isBaseline)
      children.push(metricsChild)
      const targets = {
        sidecar: { pid: sidecar.child.pid, url: `${sidecar.url}/token` },
        baseline: { pid: bareChild.pid, url: `http://127.0.0.1:${bare.port}/token` },
        metrics: { pid: metricsChild.pid, url: `http://127.0.0.1:${withMetrics.port}/token` },
        ...(before === undefined ? {} : { before: { pid: before.child.pid, url: `${before.url}/token` } })
      }
      // Warm them (JIT, connection pools) before measuring.
      for (const target of Object.values(targets)) await load(target.url, auth, { duration: WARMUP })

      const names = before === undefined ? ['sidecar', 'baseline', 'metrics'] : ['sidecar', 'baseline', 'before', 'metrics']
      const order = i % 2 === 0 ? names : names.toReversed()
      const round = {}
      for (const name of order) round[name] = await measured(targets[name].pid, targets[name].url, auth)
      round.ratio = round.baseline.cpuUs / round.sidecar.cpuUs
      round.metricsRatio = round.metrics.cpuUs / round.sidecar.cpuUs
      if (before !== undefined) round.beforeRatio = round.before.cpuUs / round.sidecar.cpuUs
      rounds.push(round)
      process.stderr.write(`round ${i + 1}/${ROUNDS}: sidecar ${round.sidecar.cpuUs.toFixed(1)} µs, bare Fastify ${round.baseline.cpuUs.toFixed(1)} µs, with default metrics ${round.metrics.cpuUs.toFixed(1)} µs${before === undefined ? '' : `, before ${round.before.cpuUs.toFixed(1)} µs`} per request; ratios ${round.ratio.toFixed(3)}, ${round.metricsRatio.toFixed(3)}${before === undefined ? '' : `, ${round.beforeRatio.toFixed(3)}`}\n`)
      peak = Math.max(peak, memory(sidecar.child.pid).peak)
    } finally {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) await stop(child)
    }
  }
  await standIn.close()
  const agg = (name) => ({
    cpuUs: median(rounds.map((r) => r[name].cpuUs)),
    rps: median(rounds.map((r) => r[name].rps)),
    p50: median(rounds.map((r) => r[name].p50)),
    p99: median(rounds.map((r) => r[name].p99)),
    errors: rounds.reduce((n, r) => n + r[name].errors, 0),
    non2xx: rounds.reduce((n, r) => n + r[name].non2xx, 0)
  })
  const spread = (ratios) => ({ ratios, ratio: median(ratios), iqr: [quantile(ratios, 0.25), quantile(ratios, 0.75)] })
  return {
    bytes,
    sidecar: agg('sidecar'),
    baseline: agg('baseline'),
    metrics: agg('metrics'),
    bare: spread(rounds.map((r) => r.ratio)),
    withMetrics: spread(rounds.map((r) => r.metricsRatio)),
    ...(args.before === undefined ? {} : { before: agg('before'), beforeRatio: spread(rounds.map((r) => r.beforeRatio)) }),
    peakKb: peak,
    upstream: standIn.count()
  }
}

async function freePort () {
  const server = createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  await new Promise((resolve) => server.close(resolve))
  return port
}

/** Start-up, memory and the probe's cost, each against its reference in the same rounds (bench/lean.mjs). */
async function lean (tokenBytes) {
  const standIn = await startStandIn({ ...CLIENT, expiresIn: 86400 })
  const sidecarEnv = {
    TOOLBRIDGE_AUTH0_CLIENT_ID: CLIENT.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: CLIENT.clientSecret,
    TOOLBRIDGE_AUTH0_TOKEN_URL: standIn.tokenUrl,
    TOOLBRIDGE_SIDECAR_SECRET: SECRET
  }
  // Node 22.1+: the sidecar enables the compile cache; this shows what a cold one (a new container's) costs.
  const cold = typeof (await import('node:module')).default.enableCompileCache === 'function'
    ? [{ name: 'sidecar, compile cache off', env: { NODE_DISABLE_COMPILE_CACHE: '1' } }]
    : []
  const targets = servers({ cli: CLI, before: args.before, sidecarEnv, tokenBytes, extra: cold })
  const start = await startupRounds({ rounds: STARTS, targets, freePort })
  const mem = await memoryRounds({ rounds: MEMORY_ROUNDS, targets: targets.filter((t) => !t.name.includes('compile cache')), requests: REQUESTS, freePort, auth })
  const sidecar = await startSidecar(standIn)
  await waitForToken(sidecar.url)
  const probes = [{ name: 'token-sidecar healthcheck', cli: CLI }, ...(args.before === undefined ? [] : [{ name: 'healthcheck before', cli: args.before }])]
  const probe = await probeRounds({ rounds: PROBES, probes, port: Number(new URL(sidecar.url).port) })
  await stop(sidecar.child)
  await standIn.close()
  return { start, mem, probe, upstream: standIn.count() }
}

/** ns per comparison of a 64-character secret, for the choice the README documents. */
function secretCompare () {
  const secret = randomBytes(32).toString('hex')
  const wrong = `${secret.slice(0, 63)}x`
  const key = randomBytes(32)
  const expectedMac = createHmac('sha256', key).update(secret).digest()
  const sidecarSecret = new SidecarSecret(secret)
  const ways = {
    'loop over the expected length (used)': (presented) => sidecarSecret.matches(presented),
    'Buffer.from + timingSafeEqual (before)': (presented) => {
      const candidate = Buffer.from(presented)
      return candidate.length === expectedMac.length * 2 && timingSafeEqual(candidate, Buffer.from(secret))
    },
    'HMAC both sides + timingSafeEqual': (presented) => timingSafeEqual(createHmac('sha256', key).update(presented).digest(), expectedMac)
  }
  const rows = []
  for (const [name, compare] of Object.entries(ways)) {
    const n = 200_000
    let ok = 0
    for (let i = 0; i < n; i++) if (compare(i % 2 === 0 ? secret : wrong)) ok++
    const started = process.hrtime.bigint()
    for (let i = 0; i < n; i++) if (compare(i % 2 === 0 ? secret : wrong)) ok++
    const ns = Number(process.hrtime.bigint() - started) / n
    if (ok !== n) throw new Error(`${name} compared wrongly`)
    rows.push({ name, ns })
  }
  return rows
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

async function proxyRounds () {
  const standIn = await startStandIn({ ...CLIENT, expiresIn: 86400 })
  try {
    return await proxyScenario({ ...PROXY, startProcess, startSidecar: (env) => startSidecar(standIn, env), stop, waitForToken, freePort, secret: SECRET })
  } finally {
    await standIn.close()
  }
}

const row = (name, s, extra) => `| ${name} | ${s.cpuUs.toFixed(1)} | ${Math.round(s.rps)} | ${s.p50} | ${s.p99} | ${s.errors} | ${s.non2xx} | ${extra} |`
const spreadText = (s) => `interquartile range ${s.iqr[0].toFixed(3)}–${s.iqr[1].toFixed(3)}; rounds: ${s.ratios.map((r) => r.toFixed(3)).join(', ')}`
const cpuTable = (tp) => `## GET /token: server CPU per request at ${RATE} req/s offered (${ROUNDS} paired rounds × ${DURATION} s, ${CONNECTIONS} connections)

| target | CPU µs/request (median) | req/s answered | p50 ms | p99 ms | errors | non-2xx | notes |
|---|---|---|---|---|---|---|---|
${row('sidecar (`GET /token`, info logging)', tp.sidecar, `peak RSS ${mb(tp.peakKb)} MB; ${tp.upstream} upstream token request(s), one per sidecar process`)}
${row('bare Fastify route, same body and headers', tp.baseline, `${tp.bytes}-byte JSON body, \`cache-control: no-store\`, the same requests (Authorization ignored), no logger (Fastify's defaults)`)}
${row('bare Fastify route with prom-client default metrics', tp.metrics, 'the same, plus `collectDefaultMetrics()` as the sidecar runs it')}${tp.before === undefined ? '' : `
${row(`the sidecar before (\`${args.before}\`)`, tp.before, 'an older build, in the same rounds')}`}

CPU ratio bare Fastify ÷ sidecar: **${tp.bare.ratio.toFixed(3)}** (median of paired rounds; ${spreadText(tp.bare)})

CPU ratio bare Fastify with default metrics ÷ sidecar: **${tp.withMetrics.ratio.toFixed(3)}** (median of paired rounds; ${spreadText(tp.withMetrics)})
${tp.beforeRatio === undefined ? '' : `
CPU ratio before ÷ sidecar: **${tp.beforeRatio.ratio.toFixed(3)}** (median of paired rounds; ${spreadText(tp.beforeRatio)})
`}`

if (args['cpu-only']) {
  process.stdout.write(cpuTable(await cpuRounds()))
  process.exit(0)
}
if (args['proxy-only']) {
  process.stdout.write(proxyTable(await proxyRounds()))
  process.exit(0)
}

const tp = SKIP.has('cpu') ? undefined : await cpuRounds()
const le = SKIP.has('lean') ? undefined : await lean(tp?.bytes ?? 150)
const sc = secretCompare()
const bu = SKIP.has('burst') ? undefined : await burst()
const px = PROXY.rounds === 0 || SKIP.has('proxy') ? undefined : await proxyRounds()
const fl = FLEET.sizes.length === 0 || SKIP.has('fleet') ? [] : await fleetScenario({ ...FLEET, startSidecar, stop, waitForToken, client: CLIENT, freePort })

const machine = `${cpus().length} × ${cpus()[0].model.trim()}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node.js ${process.version}, ${process.platform}${PINNED ? '; load generator on core 0, servers on core 1 (taskset)' : '; one core: nothing pinned'}`
const command = `node bench/run.mjs --rounds ${ROUNDS} --duration ${DURATION} --warmup ${WARMUP} --rate ${RATE} --connections ${CONNECTIONS} --starts ${STARTS} --memory-rounds ${MEMORY_ROUNDS} --probes ${PROBES}${args.before === undefined ? '' : ` --before ${args.before}`}${SKIP.size === 0 ? '' : ` --skip ${[...SKIP].join(',')}`} --burst ${BURST} --requests ${REQUESTS} --proxy-rounds ${PROXY.rounds} --proxy-requests ${PROXY.requests} --fleet ${FLEET.sizes.join(',') || '""'} --fleet-restarts ${FLEET.restarts} --fleet-lifetimes ${FLEET.lifetimes} --fleet-lifetime ${FLEET.lifetimeSeconds}`
const cpuSection = tp === undefined ? '' : cpuTable(tp)
const x = (a, b) => `${(a / b).toFixed(2)}×`
const leanSection = le === undefined ? '' : `## Start-up: spawn to the first 200 on /healthz (${STARTS} rounds, order rotating)

| process | median ms | ÷ \`node -e ''\` | ÷ bare Fastify | CPU ms to healthy | CPU ÷ bare Fastify | all rounds, ms |
|---|---|---|---|---|---|---|
${Object.entries(le.start).map(([name, r]) => `| ${name} | ${Math.round(r.ms)} | ${x(r.ms, le.start["node -e ''"].ms)} | ${x(r.ms, le.start['bare Fastify'].ms)} | ${r.cpuMs === undefined ? '' : Math.round(r.cpuMs)} | ${r.cpuMs === undefined ? '' : x(r.cpuMs, le.start['bare Fastify'].cpuMs)} | ${r.all.map(Math.round).join(', ')} |`).join('\n')}

\`node -e ''\` is spawn to exit; the sidecar's first 200 includes its first token from the loopback stand-in.

## Memory: idle, and the high-water mark over start-up + ${REQUESTS.toLocaleString('en-US')} GET /token (${MEMORY_ROUNDS} rounds, order rotating)

| process | idle RSS (1 s after healthy) | ÷ bare Fastify | high-water RSS (VmHWM) | ÷ bare Fastify | errors | non-2xx |
|---|---|---|---|---|---|---|
${Object.entries(le.mem).map(([name, r]) => `| ${name} | ${mb(r.idleKb)} MB | ${x(r.idleKb, le.mem['bare Fastify'].idleKb)} | ${mb(r.peakKb)} MB | ${x(r.peakKb, le.mem['bare Fastify'].peakKb)} | ${r.errors} | ${r.non2xx} |`).join('\n')}

## The health probe against a healthy sidecar (${PROBES} rounds, alternating with \`node -e ''\`)

| process | CPU ms (user + system) | ÷ \`node -e ''\` | peak RSS |
|---|---|---|---|
${Object.entries(le.probe).map(([name, r]) => `| ${name} | ${r.cpuMs.toFixed(1)} | ${x(r.cpuMs, le.probe["node -e ''"].cpuMs)} | ${(r.peakKb / 1024).toFixed(1)} MiB |`).join('\n')}
`
const report = `${cpuSection}
${leanSection}
## Comparing the sidecar secret (64 characters, half right, half wrong in the last character)

| method | ns per comparison |
|---|---|
${sc.map((r) => `| ${r.name} | ${Math.round(r.ns)} |`).join('\n')}
${bu === undefined ? '' : `
## Single flight under a burst

| concurrent GET /token while the token is expired and its refresh in flight | answered 200 | upstream token requests since expiry | last answer after |
|---|---|---|---|
| ${bu.requests} | ${bu.ok} | ${bu.upstream} | ${bu.lastMs} ms |
`}${px === undefined ? '' : `\n${proxyTable(px)}`}${fl.length === 0 ? '' : `\n${fleetTable(fl, FLEET)}`}`
process.stdout.write(`${report}\nmachine: ${machine}\n`)

if (args.write !== undefined) {
  // Notes written by hand below the marker survive a rewrite of the figures.
  const MARKER = '<!-- notes below are kept when the benchmark rewrites this file -->'
  const previous = existsSync(args.write) ? readFileSync(args.write, 'utf8') : ''
  const notes = previous.includes(MARKER) ? previous.slice(previous.indexOf(MARKER)) : MARKER + '\n'
  writeFileSync(args.write, `# Benchmarks

Written by \`npm run bench -- --write docs/benchmarks.md\` on ${new Date().toISOString().slice(0, 10)}; every figure comes from that run.

- Machine: ${machine}
- Command: \`npm run build && ${command}\`
- The sidecar runs as users run it (\`node dist/cli.js\`, \`LOG_LEVEL\` info) against a loopback Auth0 stand-in; autocannon drives it from the benchmark process.

## Method

- **Headline: server CPU time per request**, not throughput. Throughput at saturation on a 2-core machine, where the load generator shares the cores, measures the load generator as much as the server. Here autocannon offers a **fixed rate** (\`--rate\`, well below saturation) over keep-alive connections; the server's user + system CPU time is read from \`/proc/<pid>/stat\` before and after each run and divided by the requests answered.
- **Pinned cores.** With two cores or more, the benchmark process (load generator and Auth0 stand-in) runs on core 0 and each server on core 1 (\`taskset\`).
- **Paired rounds.** Each round starts a fresh sidecar and two fresh baselines and warms them (two processes of one build differ in CPU per request by up to 10 %: code placement, heap layout; fresh processes every round keep that spread from weighting every round the same way); they then take the same load one after the other (the order reverses between rounds); each round yields one ratio per baseline, baseline CPU per request ÷ sidecar CPU per request (1.0 means the sidecar costs what the baseline costs; higher is better). The headline is the median ratio with its interquartile range. Throughput and latency at the fixed rate are secondary columns.
- **Baselines** (\`bench/baseline.mjs\`): a bare Fastify app (Fastify's defaults, so no logger; the sidecar's Fastify has none either unless access logs are on) answering a JSON body of the same size with the same response headers (\`content-type\`, \`cache-control: no-store\`) and the same Node.js flags, taking the same requests (the sidecar's \`Authorization\` header included, which they ignore: parsing it costs every server the same) without checking them; and the same app running prom-client's \`collectDefaultMetrics()\` as the sidecar does (its event-loop-delay histogram and the rest cost every process something). The target ratio is against the bare app; the second ratio tells how much of the gap is the default metrics. Start-up and memory are compared with the bare app.
- **Start-up** is measured from spawning \`node dist/cli.js\` to the first 200 from \`/healthz\` (the first token fetched from the loopback stand-in), polling every millisecond; the bare Fastify app (the same \`bench/baseline.mjs\`, which also answers \`/healthz\`) from spawn to its first 200, and \`node -e ''\` from spawn to exit, in the same rounds, the order rotating. Medians and ratios of medians.
- **Memory**: each process is started, polled until healthy, left idle 1 s (idle RSS from \`/proc/<pid>/status\`), then takes the same number of \`GET /token\` from autocannon (10 connections, as fast as it answers); the high-water mark (\`VmHWM\`) covers its whole life, start-up included.
- **The health probe** runs against a healthy sidecar with \`node -r bench/rusage.cjs\`, which reports the process's own CPU time and peak RSS (\`getrusage\`) at exit; \`node -e ''\` is measured the same way in alternating order.
- **The proxy** (\`bench/proxy.mjs\`): the same JSON POST (an MCP \`tools/call\` of about half a kilobyte) sent one at a time over one keep-alive connection (a) straight to a loopback API stand-in with the token, (b) through the sidecar's proxy with the sidecar secret, (c) through nginx (Debian's package, one worker, \`proxy_set_header Authorization\` with a fixed token, upstream keep-alive), in paired rounds with the order rotating. Server CPU per request is that of the process the client talks to; "added" latency is the path's p50/p99 minus the direct path's in the same round. Without nginx (or with \`BENCH_NGINX=none\`) the nginx row is left out with a note.
- With \`--before <old dist/cli.js>\`, an older build runs in the same rounds: the "before" rows.

${report}
${notes}`)
}
