// The credential-injecting proxy's cost: the same POST sent (a) straight to
// the API stand-in with a token, (b) through the sidecar's proxy with the
// sidecar secret, and (c) through nginx setting a fixed Authorization header,
// in paired, interleaved rounds. Per round: the server's CPU time per request
// (from /proc) and the client's latency (p50, p99, one request at a time over
// keep-alive, timed with hrtime). Prints figures; asserts nothing.
import { execFileSync, spawn } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Pool, request } from 'undici'
import { cpuMicros, PINNED } from './proc.mjs'
import { median, quantile } from './stats.mjs'

/**
 * nginx from the system's packages, or BENCH_NGINX (a path, or `none` to leave
 * it out): { binary } or { note } saying why the comparison is left out.
 */
function findNginx () {
  const chosen = process.env.BENCH_NGINX
  if (chosen === 'none') return { note: 'left out (BENCH_NGINX=none)' }
  if (chosen !== undefined) return existsSync(chosen) ? { binary: chosen } : { note: `nginx is not installed at BENCH_NGINX=${chosen}` }
  for (const path of ['/usr/sbin/nginx', '/usr/local/sbin/nginx', '/usr/bin/nginx']) if (existsSync(path)) return { binary: path }
  try {
    const found = execFileSync('sh', ['-c', 'command -v nginx'], { encoding: 'utf8' }).trim()
    if (found !== '') return { binary: found }
  } catch {}
  return { note: 'nginx is not installed (apt-get install nginx): the nginx comparison was skipped' }
}

/** nginx as a reverse proxy that sets a fixed Authorization header, one process in the foreground, on the server core. */
async function startNginx (binary, apiPort, port, token) {
  const dir = mkdtempSync(join(tmpdir(), 'bench-nginx-'))
  const conf = join(dir, 'nginx.conf')
  writeFileSync(conf, `daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  upstream api { server 127.0.0.1:${apiPort}; keepalive 16; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://api;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host 127.0.0.1:${apiPort};
      proxy_set_header Authorization "Bearer ${token}";
    }
  }
}
`)
  const [command, args] = PINNED ? ['taskset', ['-c', '1', binary, '-c', conf, '-p', dir]] : [binary, ['-c', conf, '-p', dir]]
  const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 200; i++) {
    try {
      const res = await request(`${url}/`, { method: 'POST', body: '{}' })
      await res.body.dump()
      return { child, url, dir }
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
  throw new Error(`nginx did not start; see ${dir}/error.log`)
}


/** `requests` POSTs, one at a time, over one keep-alive connection; latency in ms, server CPU in µs per request. */
async function run (target, body, requests) {
  const pool = new Pool(target.url, { connections: 1, pipelining: 1 })
  const latencies = new Float64Array(requests)
  let failures = 0
  const before = cpuMicros(target.pid)
  for (let i = 0; i < requests; i++) {
    const started = process.hrtime.bigint()
    const res = await pool.request({ path: '/v1/notes/search?limit=5', method: 'POST', headers: target.headers, body })
    await res.body.dump()
    latencies[i] = Number(process.hrtime.bigint() - started) / 1e6
    if (res.statusCode !== 200) failures++
  }
  const cpuUs = (cpuMicros(target.pid) - before) / requests
  await pool.close()
  return { cpuUs, p50: quantile(latencies, 0.5), p99: quantile(latencies, 0.99), failures }
}

/**
 * @param {{ rounds: number, requests: number, startProcess: Function, startSidecar: Function, stop: Function, waitForToken: Function, freePort: Function, secret: string }} opts
 */
export async function proxyScenario (opts) {
  const { child: apiChild, value: api } = await opts.startProcess([new URL('./api-stand-in.mjs', import.meta.url).pathname], {}, (line) => line.startsWith('{"api":true') ? JSON.parse(line) : undefined)
  const apiUrl = `http://127.0.0.1:${api.port}`
  const sidecar = await opts.startSidecar({ TOOLBRIDGE_PROXY_TARGET: apiUrl, TOOLBRIDGE_PROXY_PORT: String(await opts.freePort()) })
  await opts.waitForToken(sidecar.url)
  const tokenAnswer = await request(`${sidecar.url}/token`, { headers: { authorization: `Bearer ${opts.secret}` } })
  const token = (await tokenAnswer.body.json()).access_token
  const told = await request(`${apiUrl}/_expect`, { method: 'POST', body: token })
  await told.body.dump()

  const { binary: nginxBinary, note } = findNginx()
  const nginx = nginxBinary === undefined ? undefined : await startNginx(nginxBinary, api.port, await opts.freePort(), token)
  if (note !== undefined) process.stderr.write(`note: ${note}\n`)

  const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'search_notes', arguments: { query: 'x'.repeat(400) } } })
  const targets = {
    direct: { pid: apiChild.pid, url: apiUrl, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' } },
    sidecar: { pid: sidecar.child.pid, url: sidecar.proxyUrl, headers: { authorization: `Bearer ${opts.secret}`, 'content-type': 'application/json' } },
    ...(nginx === undefined ? {} : { nginx: { pid: nginx.child.pid, url: nginx.url, headers: { authorization: `Bearer ${opts.secret}`, 'content-type': 'application/json' } } })
  }
  const names = Object.keys(targets)
  for (const name of names) await run(targets[name], body, Math.min(2000, opts.requests))

  const rounds = []
  for (let i = 0; i < opts.rounds; i++) {
    // Rotate the order so no path always runs first (or last) in a round.
    const order = names.map((_, k) => names[(k + i) % names.length])
    const round = {}
    for (const name of order) round[name] = await run(targets[name], body, opts.requests)
    rounds.push(round)
    process.stderr.write(`proxy round ${i + 1}/${opts.rounds}: ${names.map((n) => `${n} ${round[n].cpuUs.toFixed(1)} µs p50 ${round[n].p50.toFixed(3)} ms`).join(', ')}\n`)
  }

  await opts.stop(sidecar.child)
  if (nginx !== undefined) {
    const exited = new Promise((resolve) => nginx.child.once('exit', resolve))
    nginx.child.kill('SIGTERM')
    await exited
    rmSync(nginx.dir, { recursive: true, force: true })
  }
  await opts.stop(apiChild)

  const per = (name, field) => median(rounds.map((r) => r[name][field]))
  const added = (name, field) => median(rounds.map((r) => r[name][field] - r.direct[field]))
  const summary = {}
  for (const name of names) {
    summary[name] = {
      cpuUs: per(name, 'cpuUs'),
      p50: per(name, 'p50'),
      p99: per(name, 'p99'),
      addedP50: name === 'direct' ? 0 : added(name, 'p50'),
      addedP99: name === 'direct' ? 0 : added(name, 'p99'),
      failures: rounds.reduce((n, r) => n + r[name].failures, 0)
    }
  }
  // /proc counts CPU time in clock ticks (10 ms): a short round can leave nginx at 0, and such a round has no ratio.
  const cpuRatios = nginx === undefined ? [] : rounds.filter((r) => r.nginx.cpuUs > 0).map((r) => r.sidecar.cpuUs / r.nginx.cpuUs)
  const ratioNote = note ?? (cpuRatios.length === 0 ? 'nginx used less CPU time than /proc can count (one clock tick) in every round: more --proxy-requests' : undefined)
  return { rounds: opts.rounds, requests: opts.requests, summary, cpuRatios, note: ratioNote, bodyBytes: Buffer.byteLength(body) }
}

const LABELS = {
  direct: 'direct to the API, token in hand',
  sidecar: 'through the sidecar\'s proxy',
  nginx: 'through nginx (`proxy_set_header Authorization`)'
}

/** The markdown section for docs/benchmarks.md. */
export function proxyTable (result) {
  const f3 = (x) => x.toFixed(3)
  const rows = Object.entries(result.summary).map(([name, s]) => `| ${LABELS[name]} | ${s.cpuUs.toFixed(1)} | ${f3(s.p50)} | ${f3(s.p99)} | ${name === 'direct' ? '–' : f3(s.addedP50)} | ${name === 'direct' ? '–' : f3(s.addedP99)} | ${s.failures} |`)
  const ratio = result.cpuRatios.length === 0
    ? `CPU ratio proxy ÷ nginx: not measured (${result.note})`
    : `CPU per request, sidecar's proxy ÷ nginx: **${median(result.cpuRatios).toFixed(2)}** (median of paired rounds; interquartile range ${quantile(result.cpuRatios, 0.25).toFixed(2)}–${quantile(result.cpuRatios, 0.75).toFixed(2)}; rounds: ${result.cpuRatios.map((r) => r.toFixed(2)).join(', ')})`
  return `## Credential-injecting proxy: cost per API call (${result.rounds} paired rounds × ${result.requests} requests per path)

A ${result.bodyBytes}-byte JSON POST (an MCP \`tools/call\`), one at a time over one keep-alive connection. Server CPU is the process that answers the client: the API stand-in for the direct path, the sidecar, or nginx; "added" is the path's latency minus the direct path's in the same round (median over rounds).

| path | server CPU per request (µs) | p50 (ms) | p99 (ms) | added p50 (ms) | added p99 (ms) | failures |
|---|---|---|---|---|---|---|
${rows.join('\n')}

${ratio}
`
}
