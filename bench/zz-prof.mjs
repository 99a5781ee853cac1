import { spawn } from 'node:child_process'
import { readFileSync, readdirSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { startStandIn } from './stand-in.mjs'
const standIn = await startStandIn({ clientId: 'c', clientSecret: 's', expiresIn: 86400 })
const agg = new Map()
for (let round = 0; round < 3; round++) {
  const port = 19500 + round
  const child = spawn(process.execPath, ['--cpu-prof', '--cpu-prof-dir=/tmp/leanprof/prof', '--cpu-prof-interval', '200', '/tmp/leanprof/dist/cli.js'], { env: { PATH: process.env.PATH, TOOLBRIDGE_AUTH0_CLIENT_ID: 'c', TOOLBRIDGE_AUTH0_CLIENT_SECRET: 's', TOOLBRIDGE_AUTH0_TOKEN_URL: standIn.tokenUrl, TOOLBRIDGE_SIDECAR_SECRET: 'x'.repeat(40), TOOLBRIDGE_SIDECAR_PORT: String(port) }, stdio: 'ignore' })
  for (;;) { try { const r = await fetch(`http://127.0.0.1:${port}/healthz`); if (r.status === 200) break } catch {} await sleep(2) }
  child.kill('SIGTERM'); await new Promise((r) => child.once('exit', r))
}
await standIn.close()
// module ranges per chunk
const ranges = {}
for (const f of readdirSync('/tmp/leanprof/dist').filter((f) => f.endsWith('.js'))) {
  const lines = readFileSync(`/tmp/leanprof/dist/${f}`, 'utf8').split('\n')
  const owner = []
  let cur = '(chunk)'
  lines.forEach((l, i) => { const m = /^\/\/ (node_modules\/(@[^/]+\/[^/]+|[^/]+)|src\/.*)/.exec(l); if (m) cur = m[2] ?? 'src'; owner[i] = cur })
  ranges[f] = owner
}
for (const file of readdirSync('/tmp/leanprof/prof')) {
  const p = JSON.parse(readFileSync(`/tmp/leanprof/prof/${file}`, 'utf8'))
  const byId = new Map(p.nodes.map((n) => [n.id, n]))
  const dt = p.timeDeltas; const samples = p.samples
  // only until the profile's end (process killed shortly after healthy)
  for (let i = 0; i < samples.length; i++) {
    const n = byId.get(samples[i]); const cf = n.callFrame; let key
    const f = cf.url.split('/').pop()
    if (cf.url.includes('/tmp/leanprof/dist/')) key = ranges[f]?.[cf.lineNumber] ?? f
    else if (cf.url === '') key = `(${cf.functionName || 'native'})`
    else key = cf.url.startsWith('node:') ? 'node-internal' : cf.url
    agg.set(key, (agg.get(key) ?? 0) + (dt[i] ?? 0) / 1000 / 3)
  }
}
console.log([...agg].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([k, v]) => `${v.toFixed(1).padStart(7)} ms ${k}`).join('\n'))
