import { connect, type Socket } from 'node:net'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { TokenManager } from '../../src/engine/token-manager.js'
import { TokenPool } from '../../src/engine/token-pool.js'
import { buildApp, type ServerLimits } from '../../src/http/app.js'
import { ConnectionGuard } from '../../src/http/connection-guard.js'
import { SidecarSecret } from '../../src/http/sidecar-secret.js'
import { FakeClock, flush, until } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'

// Unauthenticated connections must not lock authorised clients out (issue 17 item 7).
// Floods are loopback sockets, bounded in count; every wait is bounded in time.

const SECRET = 'connections-sidecar-secret-0123456789abcdef'
registerSecret(SECRET)
const AUTH = { authorization: `Bearer ${SECRET}` }

async function listening (t: Test, limits: Partial<ServerLimits>, maxConnections?: number) {
  const clock = new FakeClock()
  const transport = new FakeTransport()
  const captured = captureLogger()
  const source = new TokenManager({ transport, logger: captured.logger, refreshBufferMs: 300_000, clock, timers: clock, random: () => 0 })
  const app = buildApp({ tokens: new TokenPool([['https://api.example', source]]), secret: new SidecarSecret(SECRET), logger: captured.logger, clock, limits, ...(maxConnections === undefined ? {} : { maxConnections }) })
  source.start()
  registerSecret(transport.succeed(3600))
  await flush()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const { port } = app.server.address() as AddressInfo
  const sockets: Socket[] = []
  t.teardown(async () => {
    for (const socket of sockets) socket.destroy()
    await app.close()
  })
  let accepted = 0
  app.server.on('connection', () => { accepted++ })
  /**
   * Opens `count` raw connections, each sending `bytes` if given, in batches the
   * listen backlog can hold; resolves once the server has taken every one and each
   * has its answer or was closed: the flood is then held, and what follows
   * measures only the authorised client.
   */
  const flood = async (count: number, bytes?: string): Promise<Socket[]> => {
    const opened: Socket[] = []
    for (let done = 0; done < count; done += FLOOD_BATCH) {
      const batch = Math.min(FLOOD_BATCH, count - done)
      const target = accepted + batch
      opened.push(...await Promise.all(Array.from({ length: batch }, () => new Promise<Socket>((resolve) => {
        const socket = connect(port, '127.0.0.1')
        sockets.push(socket)
        socket.on('error', () => {})
        socket.once('close', () => resolve(socket))
        if (bytes === undefined) {
          socket.resume()
          socket.once('connect', () => resolve(socket))
        } else {
          socket.once('connect', () => socket.write(bytes))
          socket.once('data', () => resolve(socket))
        }
      }))))
      await until(() => accepted >= target, 10_000)
    }
    return opened
  }
  /** An authorised GET /token on a fresh connection: its status, or the error, and how long it took. */
  const authorised = async (): Promise<{ status: number | string, ms: number }> => {
    const agent = new Agent({ connections: 1 })
    const started = performance.now()
    try {
      const res = await request(`http://127.0.0.1:${port}/token`, { headers: AUTH, dispatcher: agent, signal: AbortSignal.timeout(5000) })
      await res.body.dump()
      return { status: res.statusCode, ms: performance.now() - started }
    } catch (err) {
      return { status: (err as { code?: string }).code ?? String(err), ms: performance.now() - started }
    } finally {
      await agent.close()
    }
  }
  const open = (): number => sockets.filter((s) => !s.destroyed && s.readyState === 'open').length
  return { app, port, flood, authorised, open }
}

/** Well under Node's listen backlog (511), so the kernel never drops a handshake of the flood. */
const FLOOD_BATCH = 250
const HEALTHZ = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'

t.test('2,000 idle connections against a cap of 50: an authorised client is still answered, within a second', async (t) => {
  const { flood, authorised } = await listening(t, {}, 50)
  await flood(2000)
  const answer = await authorised()
  t.equal(answer.status, 200, 'answered, not reset')
  t.ok(answer.ms < 1000, `in ${Math.round(answer.ms)} ms`)
})

t.test('1,024 connections that each sent one unauthenticated GET /healthz: an authorised client is still answered', async (t) => {
  const { flood, authorised } = await listening(t, {}, 50)
  await flood(1024, HEALTHZ)
  const answer = await authorised()
  t.equal(answer.status, 200, 'answered, not reset')
  t.ok(answer.ms < 1000, `in ${Math.round(answer.ms)} ms`)
})

t.test('at the default cap (1,024): 2,000 idle connections and 1,024 /healthz ones, an authorised client is answered within a second', async (t) => {
  const { flood, authorised } = await listening(t, {})
  await flood(2000)
  await flood(1024, HEALTHZ)
  const answer = await authorised()
  t.equal(answer.status, 200, 'answered, not reset')
  t.ok(answer.ms < 1000, `in ${Math.round(answer.ms)} ms`)
})

t.test('an unauthenticated connection gets a short keep-alive; an authenticated one keeps the long one', async (t) => {
  const { flood, port } = await listening(t, { unauthenticatedIdleMs: 200, keepAliveTimeoutMs: 60_000 })
  const strangers = await flood(20, HEALTHZ)
  const idle = await flood(5)
  const member = connect(port, '127.0.0.1')
  member.on('error', () => {})
  t.teardown(() => { member.destroy() })
  let answered = ''
  member.setEncoding('utf8').on('data', (chunk: string) => { answered += chunk })
  member.write(`GET /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\n\r\n`)
  await until(() => answered.includes('access_token'), 5000)
  await until(() => [...strangers, ...idle].every((s) => s.destroyed || s.readyState === 'closed'), 5000)
  t.pass('every unauthenticated connection was closed once idle (the 60 s keep-alive would have kept them)')
  t.notOk(member.destroyed, 'the authenticated connection is still open')
  t.equal(member.readyState, 'open')
})

t.test('past the cap the idlest unauthenticated connection goes first; the authenticated ones stay', async (t) => {
  const { port, flood, authorised } = await listening(t, {}, 4)
  const member = connect(port, '127.0.0.1')
  member.on('error', () => {})
  t.teardown(() => { member.destroy() })
  let answered = ''
  member.setEncoding('utf8').on('data', (chunk: string) => { answered += chunk })
  member.write(`GET /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\n\r\n`)
  await until(() => answered.includes('access_token'))
  const [oldest] = await flood(1)
  const [recent] = await flood(1, HEALTHZ)
  await flood(1)
  // Four held: the member and three strangers. Activity makes `recent` younger than `oldest`.
  const [fifth] = await flood(1)
  await until(() => oldest!.destroyed || oldest!.readyState === 'closed')
  t.pass('the stranger idle longest was closed to admit a new connection')
  t.equal(recent!.readyState, 'open', 'one that asked something since stays')
  t.equal(fifth!.readyState, 'open', 'the new connection was admitted')
  t.notOk(member.destroyed, 'the authenticated one stays')
  t.equal((await authorised()).status, 200, 'and another authorised client gets in')
})

t.test('the guard counts connections across their closing, under one cap', async (t) => {
  const guard = new ConnectionGuard({ maxConnections: 2, unauthenticatedIdleMs: 60_000 })
  t.teardown(() => guard.close())
  const { createServer } = await import('node:http')
  const server = createServer((_req, res) => res.end('ok'))
  guard.attach(server)
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))
  const { port } = server.address() as AddressInfo
  const a = connect(port, '127.0.0.1')
  await new Promise((resolve) => a.once('connect', resolve))
  await until(() => guard.size === 1)
  a.destroy()
  await until(() => guard.size === 0)
  t.pass('a closed connection is no longer counted')
  guard.authenticated(a)
  t.equal(guard.size, 0, 'marking a gone or untracked socket changes nothing')
})
