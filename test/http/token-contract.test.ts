import { connect, type AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { TokenManager } from '../../src/engine/token-manager.js'
import { TokenPool } from '../../src/engine/token-pool.js'
import { buildApp } from '../../src/http/app.js'
import { SidecarSecret } from '../../src/http/sidecar-secret.js'
import { createMetrics } from '../../src/metrics/metrics.js'
import { FakeClock, flush, until } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'

// GET /token's contract, case by case, asked the same way over Fastify's inject()
// (always the Fastify route) and over a real loopback connection (where the common
// case gets the early answer): status, every header, and the body.

const SECRET = 'token-contract-sidecar-secret-0123456789abcdef'
const WRONG = 'token-contract-wrong-secret-0123456789abcdef00'
registerSecret(SECRET, WRONG)
const AUTH = { authorization: `Bearer ${SECRET}` }
const A = 'https://api.example'
const B = 'https://reports.example'
const JSON_TYPE = 'application/json; charset=utf-8'
const START = Date.UTC(2026, 10, 26, 12, 0, 0)

interface Answer { status: number, headers: Record<string, string>, body: string }
type Method = 'GET' | 'HEAD'
interface Ask { path: string, headers?: Record<string, string>, method?: Method }

/** Headers that differ by transport only: the date, and connection management on a real socket. */
const TRANSPORT_HEADERS = new Set(['date', 'connection', 'keep-alive', 'transfer-encoding'])

function contractHeaders (raw: Record<string, string | string[] | undefined>): Record<string, string> {
  const headers: Record<string, string> = {}
  for (const [name, value] of Object.entries(raw)) if (!TRANSPORT_HEADERS.has(name)) headers[name] = String(value)
  return headers
}

async function setup (t: Test) {
  const clock = new FakeClock(START)
  const transports: Record<string, FakeTransport> = { [A]: new FakeTransport(), [B]: new FakeTransport() }
  const captured = captureLogger()
  const managers = [A, B].map((audience) => new TokenManager({ transport: transports[audience]!, logger: captured.logger, refreshBufferMs: 300_000, clock, timers: clock, random: () => 0 }))
  const tokens = new TokenPool([[A, managers[0]!], [B, managers[1]!]])
  const metrics = createMetrics({ audiences: [A, B], current: (audience) => tokens.get(audience)?.current() }, clock)
  const app = buildApp({ tokens, secret: new SidecarSecret(SECRET), logger: captured.logger, metrics, clock })
  // Which code answered: a hook of the app sees only requests that go through Fastify's routing.
  const routed: string[] = []
  let arrived = 0
  app.addHook('onRequest', async () => { arrived++ })
  app.addHook('onSend', async (request) => {
    routed.push(`${request.method} ${request.url}`)
  })
  t.teardown(() => app.close())
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const via = {
    async inject ({ path, headers = {}, method = 'GET' }: Ask): Promise<Answer> {
      const res = await app.inject({ method, url: path, headers })
      return { status: res.statusCode, headers: contractHeaders(res.headers as Record<string, string>), body: res.body }
    },
    async socket ({ path, headers = {}, method = 'GET' }: Ask): Promise<Answer & { connection: string | undefined }> {
      const res = await request(`${base}${path}`, { method, headers })
      return { status: res.statusCode, headers: contractHeaders(res.headers), body: await res.body.text(), connection: res.headers.connection as string | undefined }
    }
  }
  const start = async (): Promise<Record<string, string>> => {
    tokens.start()
    const issued = { [A]: transports[A]!.succeed(3600), [B]: transports[B]!.succeed(7200) }
    registerSecret(issued[A]!, issued[B]!)
    await flush()
    return issued
  }
  return { app, clock, tokens, transports, metrics, via, start, routed, arrived: () => arrived, lines: captured.lines }
}

/** Asks over both transports, checks they agree on everything, and returns the answer. */
async function both (t: Test, via: Awaited<ReturnType<typeof setup>>['via'], ask: Ask): Promise<Answer> {
  const injected = await via.inject(ask)
  const { connection, ...wire } = await via.socket(ask)
  t.same(wire, injected, `${ask.method ?? 'GET'} ${ask.path}: the same over a socket and over inject()`)
  // undici itself closes a connection after HEAD.
  if (ask.method !== 'HEAD') t.equal(connection, 'keep-alive', 'the connection stays open')
  return wire
}

function tokenBody (accessToken: string, expiresIn: number, lifetimeSeconds: number): string {
  return JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: expiresIn, expires_at: new Date(START + lifetimeSeconds * 1000).toISOString() })
}

function jsonHeaders (body: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'cache-control': 'no-store', 'content-type': JSON_TYPE, 'content-length': String(Buffer.byteLength(body)), ...extra }
}

t.test('the right secret, a token held: 200 with the token', async (t) => {
  const { via, start, clock } = await setup(t)
  const issued = await start()
  await clock.advance(1500)
  const body = tokenBody(issued[A]!, 3598, 3600)
  t.same(await both(t, via, { path: '/token', headers: AUTH }), { status: 200, headers: jsonHeaders(body), body })
  t.same(await both(t, via, { path: '/token', headers: { authorization: `bearer ${SECRET}` } }), { status: 200, headers: jsonHeaders(body), body }, 'the scheme is case-insensitive')
  await clock.advance(1000)
  const later = tokenBody(issued[A]!, 3597, 3600)
  t.same(await both(t, via, { path: '/token', headers: AUTH }), { status: 200, headers: jsonHeaders(later), body: later }, 'expires_in counts down')
})

t.test('a wrong or missing secret: 401 with WWW-Authenticate, never a token', async (t) => {
  const { via, start } = await setup(t)
  await start()
  const wrong = '{"error":"unauthorized","error_description":"the sidecar secret does not match"}'
  const missing = '{"error":"unauthorized","error_description":"send the sidecar secret as Authorization: Bearer <secret>"}'
  t.same(await both(t, via, { path: '/token', headers: { authorization: `Bearer ${WRONG}` } }), { status: 401, headers: jsonHeaders(wrong, { 'www-authenticate': 'Bearer' }), body: wrong })
  t.same(await both(t, via, { path: '/token' }), { status: 401, headers: jsonHeaders(missing, { 'www-authenticate': 'Bearer' }), body: missing })
  t.same(await both(t, via, { path: '/token', headers: { authorization: `Basic ${SECRET}` } }), { status: 401, headers: jsonHeaders(missing, { 'www-authenticate': 'Bearer' }), body: missing })
})

t.test('no token yet: the request waits for the fetch; a failed fetch is 503 with Retry-After', async (t) => {
  const { via, tokens, transports, arrived } = await setup(t)
  tokens.start()
  const waiting = Promise.all([via.inject({ path: '/token', headers: AUTH }), via.socket({ path: '/token', headers: AUTH })])
  await until(() => arrived() === 2)
  await flush()
  const token = transports[A]!.succeed(3600)
  registerSecret(token)
  transports[B]!.succeed(3600)
  const body = tokenBody(token, 3600, 3600)
  const [injected, { connection, ...wire }] = await waiting
  t.same(injected, { status: 200, headers: jsonHeaders(body), body })
  t.same(wire, injected, 'the same over a socket')
  t.equal(connection, 'keep-alive')
})

t.test('no token and the fetch failed: 503 token_unavailable with Retry-After', async (t) => {
  const { via, tokens, transports } = await setup(t)
  tokens.start()
  transports[A]!.fail({ kind: 'config_error', status: 401, auth0Error: 'access_denied', retryAfterMs: 0 })
  transports[B]!.succeed(3600)
  await flush()
  const answer = await both(t, via, { path: '/token', headers: AUTH })
  t.equal(answer.status, 503)
  t.same(answer.headers, jsonHeaders(answer.body, { 'retry-after': '60' }))
  t.match(JSON.parse(answer.body), { error: 'token_unavailable', error_description: /access_denied/ })
})

t.test('?audience= picks a configured audience; another is 400 naming the configured ones', async (t) => {
  const { via, start } = await setup(t)
  const issued = await start()
  const b = tokenBody(issued[B]!, 7200, 7200)
  t.same(await both(t, via, { path: `/token?audience=${encodeURIComponent(B)}`, headers: AUTH }), { status: 200, headers: jsonHeaders(b), body: b })
  const a = tokenBody(issued[A]!, 3600, 3600)
  t.same(await both(t, via, { path: `/token?audience=${encodeURIComponent(A)}`, headers: AUTH }), { status: 200, headers: jsonHeaders(a), body: a })
  const bad = `{"error":"invalid_request","error_description":"this sidecar serves tokens for these audiences only: ${A}, ${B}"}`
  t.same(await both(t, via, { path: '/token?audience=https://other.example', headers: AUTH }), { status: 400, headers: jsonHeaders(bad), body: bad })
})

t.test('HEAD /token: the GET answer\'s status and headers, no body', async (t) => {
  const { via, start } = await setup(t)
  const issued = await start()
  const body = tokenBody(issued[A]!, 3600, 3600)
  t.same(await both(t, via, { path: '/token', headers: AUTH, method: 'HEAD' }), { status: 200, headers: jsonHeaders(body), body: '' })
  const missing = '{"error":"unauthorized","error_description":"send the sidecar secret as Authorization: Bearer <secret>"}'
  t.same(await both(t, via, { path: '/token', method: 'HEAD' }), { status: 401, headers: jsonHeaders(missing, { 'www-authenticate': 'Bearer' }), body: '' })
})

t.test('shutdown: a request waiting for a token is answered 503 at once', async (t) => {
  const { app, via, tokens, arrived } = await setup(t)
  tokens.start()
  const waiting = Promise.all([via.inject({ path: '/token', headers: AUTH }), via.socket({ path: '/token', headers: AUTH })])
  await until(() => arrived() === 2)
  await flush()
  const closed = app.close()
  const [injected, { connection: _, ...wire }] = await waiting
  const body = '{"error":"token_unavailable","error_description":"the sidecar is shutting down"}'
  t.same(injected, { status: 503, headers: jsonHeaders(body, { 'retry-after': '1' }), body })
  t.same(wire, injected, 'the same over a socket')
  await closed
})

t.test('which path answered: the early answer takes only the common case, over a socket; the route everything else; each answer is counted once', async (t) => {
  const { via, start, routed, metrics } = await setup(t)
  await start()
  await via.socket({ path: '/token', headers: AUTH })
  await via.socket({ path: '/token', headers: AUTH })
  await via.socket({ path: '/token', headers: AUTH, method: 'HEAD' })
  await via.socket({ path: '/token' })
  await via.socket({ path: `/token?audience=${encodeURIComponent(A)}`, headers: AUTH })
  await via.inject({ path: '/token', headers: AUTH })
  t.same(routed, ['HEAD /token', 'GET /token', `GET /token?audience=${encodeURIComponent(A)}`, 'GET /token'], 'the two plain GETs over a socket never reached Fastify')
  const text = await metrics.registry.metrics()
  t.match(text, /tokensidecar_token_responses_total\{route="\/token",code="200"\} 5/)
  t.match(text, /tokensidecar_token_responses_total\{route="\/token",code="401"\} 1/)
})

t.test('the early answer and the route write the same bytes, headers in the same order', async (t) => {
  const { app, start, routed } = await setup(t)
  await start()
  const { port } = app.server.address() as AddressInfo
  const raw = (path: string): Promise<string> => new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let text = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk
      if (/\r\n\r\n\{[^]*\}$/.test(text)) {
        socket.destroy()
        resolve(text)
      }
    })
    socket.on('error', reject)
    socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\n\r\n`)
  })
  const withoutDate = (text: string): string => text.replace(/\r\ndate: [^\r]*/i, '')
  const early = await raw('/token')
  const route = await raw(`/token?audience=${encodeURIComponent(A)}`)
  t.same(routed, [`GET /token?audience=${encodeURIComponent(A)}`], 'one of each')
  t.equal(withoutDate(early), withoutDate(route))
  t.match(early, /^HTTP\/1\.1 200 OK\r\ncontent-type: application\/json; charset=utf-8\r\ncache-control: no-store\r\ncontent-length: \d+\r\n/)
})

t.test('with access logs on, every GET /token goes through the route, and is logged', async (t) => {
  const captured = captureLogger('debug')
  const clock = new FakeClock(START)
  const transport = new FakeTransport()
  const source = new TokenManager({ transport, logger: captured.logger, refreshBufferMs: 300_000, clock, timers: clock, random: () => 0 })
  const app = buildApp({ tokens: new TokenPool([[A, source]]), secret: new SidecarSecret(SECRET), logger: captured.logger, clock })
  t.teardown(() => app.close())
  source.start()
  registerSecret(transport.succeed(3600))
  await flush()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const res = await request(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}/token`, { headers: AUTH })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.ok(captured.lines().some((l) => l.msg === 'request completed'), 'an access log line')
})
