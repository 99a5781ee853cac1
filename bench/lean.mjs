// What the sidecar costs around GET /token (issue 23), each figure against a
// reference measured in the same rounds, the order rotating between rounds:
// - start-up, spawn to the first 200 on /healthz, against `node -e ''` (spawn
//   to exit) and a bare Fastify app (bench/baseline.mjs, spawn to its first 200);
// - idle RSS (1 s after healthy) and the high-water RSS (VmHWM) over start-up
//   plus N GET /token, against the bare Fastify app taking the same N requests;
// - the health probe's CPU time and peak RSS (getrusage, bench/rusage.cjs),
//   against `node -e ''`.
import { setTimeout as sleep } from 'node:timers/promises'
import autocannon from 'autocannon'
import { Agent, request } from 'undici'
import { cpuMicros, memory, spawnNode } from './proc.mjs'
import { median } from './stats.mjs'

const BASELINE = new URL('./baseline.mjs', import.meta.url).pathname
const RUSAGE = new URL('./rusage.cjs', import.meta.url).pathname

const rotate = (list, i) => list.map((_, k) => list[(k + i) % list.length])

async function exited (child) {
  if (child.exitCode !== null || child.signalCode !== null) return
  await new Promise((resolve) => child.once('exit', resolve))
}

async function stop (child) {
  const done = exited(child)
  child.kill('SIGTERM')
  await done
}

/** Polls GET /healthz until a 200; resolves with performance.now() at that answer. */
async function firstOk (port, child) {
  const agent = new Agent({ connectTimeout: 100 })
  try {
    for (let i = 0; i < 20_000; i++) {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode} before answering`)
      const status = await request(`http://127.0.0.1:${port}/healthz`, { dispatcher: agent, reset: true })
        .then(async (res) => { await res.body.dump(); return res.statusCode }, () => 0)
      if (status === 200) return performance.now()
      await sleep(1)
    }
    throw new Error('never healthy')
  } finally {
    await agent.close()
  }
}

/**
 * The servers under test: the sidecar (and, with `before`, an older build of
 * it) and the bare Fastify app, each as { name, start(port) → child }.
 */
export function servers ({ cli, before, sidecarEnv, tokenBytes, extra = [] }) {
  const list = [
    { name: 'sidecar', token: true, start: (port) => spawnNode([cli], { ...sidecarEnv, TOOLBRIDGE_SIDECAR_PORT: String(port) }, ['ignore', 'ignore', 'inherit']) },
    { name: 'bare Fastify', token: false, start: (port) => spawnNode([BASELINE, String(tokenBytes), String(port)], {}, ['ignore', 'ignore', 'inherit']) }
  ]
  if (before !== undefined) {
    list.push({ name: 'sidecar before', token: true, start: (port) => spawnNode([before], { ...sidecarEnv, TOOLBRIDGE_SIDECAR_PORT: String(port) }, ['ignore', 'ignore', 'inherit']) })
  }
  for (const e of extra) list.push({ name: e.name, token: true, start: (port) => spawnNode([cli], { ...sidecarEnv, ...e.env, TOOLBRIDGE_SIDECAR_PORT: String(port) }, ['ignore', 'ignore', 'inherit']) })
  return list
}

/** Spawn to first 200 on /healthz for each server, and spawn to exit for `node -e ''`, in rotating order. */
export async function startupRounds ({ rounds, targets, freePort }) {
  const times = Object.fromEntries([['node -e \'\'', []], ...targets.map((t) => [t.name, []])])
  const cpu = Object.fromEntries(targets.map((t) => [t.name, []]))
  const all = [{ name: 'node -e \'\'', empty: true }, ...targets]
  for (let i = 0; i < rounds; i++) {
    for (const target of rotate(all, i)) {
      if (target.empty) {
        const started = performance.now()
        const child = spawnNode(['-e', ''], {}, 'ignore')
        await exited(child)
        times[target.name].push(performance.now() - started)
        continue
      }
      const port = await freePort()
      const started = performance.now()
      const child = target.start(port)
      const ok = await firstOk(port, child)
      times[target.name].push(ok - started)
      // CPU time to healthy: steadier than wall time on a shared machine.
      cpu[target.name].push(cpuMicros(child.pid) / 1000)
      await stop(child)
    }
  }
  return Object.fromEntries(Object.entries(times).map(([name, xs]) => [name, { ms: median(xs), all: xs, cpuMs: cpu[name] === undefined ? undefined : median(cpu[name]) }]))
}

/**
 * Idle RSS a second after healthy, then N GET /token (autocannon, 10
 * connections) and the high-water mark of the whole life so far.
 */
export async function memoryRounds ({ rounds, targets, requests, freePort, auth }) {
  const out = Object.fromEntries(targets.map((t) => [t.name, { idle: [], peak: [], errors: 0, non2xx: 0 }]))
  for (let i = 0; i < rounds; i++) {
    for (const target of rotate(targets, i)) {
      const port = await freePort()
      const child = target.start(port)
      await firstOk(port, child)
      await sleep(1000)
      const idle = memory(child.pid).rss
      const result = await autocannon({ url: `http://127.0.0.1:${port}/token`, headers: target.token ? auth : {}, connections: 10, amount: requests })
      const { peak } = memory(child.pid)
      await stop(child)
      const o = out[target.name]
      o.idle.push(idle)
      o.peak.push(peak)
      o.errors += result.errors + result.timeouts
      o.non2xx += result.non2xx
    }
  }
  return Object.fromEntries(Object.entries(out).map(([name, o]) => [name, { idleKb: median(o.idle), peakKb: median(o.peak), errors: o.errors, non2xx: o.non2xx }]))
}

async function rusage (argv, env) {
  const child = spawnNode(['-r', RUSAGE, ...argv], env, ['ignore', 'pipe', 'pipe'])
  let stderr = ''
  let stdout = ''
  child.stdout.setEncoding('utf8').on('data', (c) => { stdout += c })
  child.stderr.setEncoding('utf8').on('data', (c) => { stderr += c })
  const code = await new Promise((resolve) => child.once('close', resolve))
  const line = stderr.split('\n').find((l) => l.startsWith('{"rusage"'))
  if (line === undefined) throw new Error(`no rusage from ${argv.join(' ')}: ${stderr}`)
  return { ...JSON.parse(line).rusage, code, stdout }
}

/** `token-sidecar healthcheck` against a healthy sidecar, and `node -e ''`, in alternating order. */
export async function probeRounds ({ rounds, probes, port }) {
  const all = [{ name: 'node -e \'\'', argv: ['-e', ''] }, ...probes.map((p) => ({ name: p.name, argv: [p.cli, 'healthcheck'] }))]
  const out = Object.fromEntries(all.map((p) => [p.name, { cpu: [], rss: [] }]))
  for (let i = 0; i < rounds; i++) {
    for (const p of rotate(all, i)) {
      const r = await rusage(p.argv, { TOOLBRIDGE_SIDECAR_PORT: String(port) })
      if (p.argv[0] !== '-e' && r.code !== 0) throw new Error(`the probe failed: ${r.stdout}`)
      out[p.name].cpu.push(r.cpuUs)
      out[p.name].rss.push(r.maxRssKb)
    }
  }
  return Object.fromEntries(Object.entries(out).map(([name, o]) => [name, { cpuMs: median(o.cpu) / 1000, peakKb: median(o.rss) }]))
}
