// The fleet scenario of npm run bench: N sidecar processes × restarts × token
// lifetimes, counting upstream token requests, with and without the shared
// store (a real redis-server on loopback). Prints figures; asserts nothing.
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { startStandIn } from './stand-in.mjs'

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function startRedis (port) {
  if (spawnSync('redis-server', ['--version']).error !== undefined) {
    throw new Error('the fleet scenario needs redis-server: apt-get install redis-server (or pass --fleet "" to skip it)')
  }
  const dir = mkdtempSync(join(tmpdir(), 'bench-redis-'))
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: ['ignore', 'pipe', 'inherit'] })
  // The working directory goes with the server.
  child.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  await new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (chunk) => {
      out += chunk
      if (out.includes('Ready to accept connections')) resolve()
    })
    child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)))
  })
  return child
}

/**
 * @param {object} o
 * @param {number[]} o.sizes            fleet sizes N
 * @param {number} o.restarts           times the whole fleet restarts (a deploy)
 * @param {number} o.lifetimes          token lifetimes waited through
 * @param {number} o.lifetimeSeconds    expires_in of the stand-in's tokens
 * @param {(standIn: object, env: object) => Promise<{ child: import('node:child_process').ChildProcess, url: string }>} o.startSidecar
 * @param {(child: import('node:child_process').ChildProcess) => Promise<void>} o.stop
 * @param {(url: string) => Promise<void>} o.waitForToken
 * @param {object} o.client             the stand-in's client id and secret
 * @param {() => Promise<number>} o.freePort
 */
export async function fleetScenario (o) {
  const redisPort = await o.freePort()
  const redis = await startRedis(redisPort)
  const bufferSeconds = 3
  // A refresh round is due at expiry minus the buffer, less up to 10 % jitter.
  const roundMs = (o.lifetimeSeconds - bufferSeconds) * 1000
  const rows = []
  try {
    for (const size of o.sizes) {
      for (const shared of [false, true]) {
        const env = {
          TOOLBRIDGE_REFRESH_BUFFER_SECONDS: String(bufferSeconds),
          // A prefix of its own per run: every run starts cold, with an empty store.
          ...(shared ? { TOOLBRIDGE_TOKEN_STORE_URL: `redis://127.0.0.1:${redisPort}`, TOOLBRIDGE_TOKEN_STORE_PREFIX: `bench:${size}:${Date.now()}:` } : {})
        }
        const standIn = await startStandIn({ ...o.client, expiresIn: o.lifetimeSeconds })
        const startAll = async () => {
          const members = await Promise.all(Array.from({ length: size }, () => o.startSidecar(standIn, env)))
          await Promise.all(members.map((m) => o.waitForToken(m.url)))
          return members
        }
        let members = await startAll()
        const atStart = standIn.count()
        await sleep(o.lifetimes * roundMs + 1500)
        const lifetimes = standIn.count() - atStart
        let restarts = 0
        for (let r = 0; r < o.restarts; r++) {
          await Promise.all(members.map((m) => o.stop(m.child)))
          const before = standIn.count()
          members = await startAll()
          restarts += standIn.count() - before
        }
        await Promise.all(members.map((m) => o.stop(m.child)))
        await standIn.close()
        rows.push({ size, shared, atStart, lifetimes, restarts, total: standIn.count() })
      }
    }
  } finally {
    redis.kill('SIGTERM')
  }
  return rows
}

/** The Markdown table of fleetScenario's rows. */
export function fleetTable (rows, o) {
  const lines = rows.map((r) => `| ${r.size} | ${r.shared ? 'shared store (Redis)' : 'per process (no store)'} | ${r.atStart} | ${r.lifetimes} | ${r.restarts} | **${r.total}** |`)
  return `## A fleet sharing one token (TOOLBRIDGE_TOKEN_STORE_URL)

N sidecar processes against one Auth0 stand-in: start-up, ${o.lifetimes} token lifetime(s) of ${o.lifetimeSeconds} s (refresh buffer 3 s), then ${o.restarts} restart(s) of the whole fleet (a deploy), counting upstream token requests; with a real redis-server on loopback as the shared store, and without one.

| N | mode | at start-up | during the lifetime(s) | over the restart(s) | total upstream requests |
|---|---|---|---|---|---|
${lines.join('\n')}
`
}
