import t, { type Test } from 'tap'
import { StaticToken } from '../../src/engine/static-token.js'
import { TokenManager } from '../../src/engine/token-manager.js'
import type { TokenSource } from '../../src/engine/types.js'
import { buildApp } from '../../src/http/app.js'
import { TokenPool } from '../../src/engine/token-pool.js'
import { SidecarSecret } from '../../src/http/sidecar-secret.js'
import { FakeClock, flush, settle } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'

const SECRET = 'app-test-sidecar-secret-0123456789abcdef'
const AUDIENCE = 'https://toolbridgeapi.erauner.dev'
const auth = { authorization: `Bearer ${SECRET}` }
registerSecret(SECRET)

function setup (t: Test, level = 'info') {
  const clock = new FakeClock()
  const transport = new FakeTransport()
  const captured = captureLogger(level)
  const source = new TokenManager({ transport, logger: captured.logger, refreshBufferMs: 300_000, clock, timers: clock, random: () => 0 })
  const app = buildApp({ tokens: new TokenPool([[AUDIENCE, source]]), secret: new SidecarSecret(SECRET), logger: captured.logger, clock })
  t.teardown(() => app.close())
  return { app, clock, transport, source, lines: captured.lines }
}

async function withToken (t: Test, level = 'info') {
  const ctx = setup(t, level)
  ctx.source.start()
  const token = ctx.transport.succeed(3600)
  registerSecret(token)
  await flush()
  return { ...ctx, token }
}

t.test('GET /token answers the contract shape with no-store', async (t) => {
  const { app, clock, token } = await withToken(t)
  await clock.advance(100_500)
  const res = await app.inject({ url: '/token', headers: auth })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.headers['content-type'], /^application\/json/)
  t.same(res.json(), { access_token: token, token_type: 'Bearer', expires_in: 3499, expires_at: '2026-11-26T13:00:00.000Z' })
})

t.test('the sidecar secret is required, compared exactly, scheme case-insensitive', async (t) => {
  const { app, token, lines } = await withToken(t)
  const cases: Array<[Record<string, string>, number]> = [
    [{}, 401],
    [{ authorization: SECRET }, 401],
    [{ authorization: `Basic ${SECRET}` }, 401],
    [{ authorization: 'Bearer ' }, 401],
    [{ authorization: `Bearer ${SECRET}x` }, 401],
    [{ authorization: `Bearer ${SECRET.slice(0, -1)}` }, 401],
    [{ authorization: `bearer ${SECRET}` }, 200],
    [{ authorization: `BEARER ${SECRET}` }, 200]
  ]
  for (const [headers, status] of cases) {
    const res = await app.inject({ url: '/token', headers })
    t.equal(res.statusCode, status, JSON.stringify(headers).replace(SECRET, '<secret>'))
    if (status === 401) {
      t.equal(res.headers['www-authenticate'], 'Bearer')
      t.match(res.json(), { error: 'unauthorized', error_description: String })
      t.notMatch(res.body, token)
    }
  }
  const refresh = await app.inject({ method: 'POST', url: '/token/refresh' })
  t.equal(refresh.statusCode, 401, 'refresh needs the secret too')
  const rejected = lines().filter((l) => l.event === 'auth_rejected')
  t.equal(rejected.length, 1, 'rejections are logged, at most once a minute')
  t.match(rejected[0], { level: 'warn', reason: 'missing_credentials' })
})

t.test('a query audience other than the configured one is a 400', async (t) => {
  const { app } = await withToken(t)
  t.equal((await app.inject({ url: `/token?audience=${encodeURIComponent(AUDIENCE)}`, headers: auth })).statusCode, 200)
  const wrong = await app.inject({ url: '/token?audience=https://other.example', headers: auth })
  t.equal(wrong.statusCode, 400)
  t.match(wrong.json(), { error: 'invalid_request', error_description: /only serves tokens for audience/ })
  t.equal((await app.inject({ url: `/token?audience=${encodeURIComponent(AUDIENCE)}&audience=x`, headers: auth })).statusCode, 400, 'repeated')
  t.equal((await app.inject({ method: 'POST', url: '/token/refresh?audience=x', headers: auth })).statusCode, 400)
})

t.test('no token yet: a request waits for the in-flight fetch', async (t) => {
  const { app, transport, source } = setup(t)
  source.start()
  let answered = false
  const pending = app.inject({ url: '/token', headers: auth }).finally(() => { answered = true })
  for (let i = 0; i < 20; i++) await flush()
  t.notOk(answered, 'still waiting for the upstream')
  const token = transport.succeed(3600)
  registerSecret(token)
  const res = await pending
  t.equal(res.statusCode, 200)
  t.equal(res.json().access_token, token)
})

t.test('no token and nothing in flight: 503 token_unavailable with Retry-After', async (t) => {
  const { app, transport, source } = setup(t)
  source.start()
  const pending = app.inject({ url: '/token', headers: auth })
  for (let i = 0; i < 20; i++) await flush()
  transport.fail({ kind: 'config_error', status: 401, auth0Error: 'access_denied', retryAfterMs: 0 })
  const res = await pending
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '60')
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.json(), { error: 'token_unavailable', error_description: /access_denied/ })
  const again = await app.inject({ url: '/token', headers: auth })
  t.equal(again.statusCode, 503)
  t.equal(transport.open, 0, 'no upstream request during backoff')
})

t.test('an expired token is never served', async (t) => {
  const { app, clock, transport } = await withToken(t)
  await clock.advance(clock.pendingDelays()[0]!)
  transport.fail({ status: 500 })
  await flush()
  // Let retries fire but never answer them: the request after expiry must not get the old token.
  await clock.advance(3600_000)
  transport.fail({ status: 500 })
  await flush()
  const res = await app.inject({ url: '/token', headers: auth })
  t.equal(res.statusCode, 503)
})

t.test('POST /token/refresh forces a new token once the current one is 10 s old', async (t) => {
  const { app, clock, transport, token } = await withToken(t)
  const young = await app.inject({ method: 'POST', url: '/token/refresh', headers: auth })
  t.equal(young.statusCode, 200)
  t.equal(young.json().access_token, token, 'younger than 10 s: the same token')
  t.equal(transport.open, 0)

  await clock.advance(10_000)
  const forced = Array.from({ length: 3 }, () => app.inject({ method: 'POST', url: '/token/refresh', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"unknown":"fields are ignored"}' }))
  await settle(() => transport.open > 0)
  for (let i = 0; i < 20; i++) await flush()
  t.equal(transport.open, 1, 'concurrent refresh calls share one upstream request')
  const fresh = transport.succeed(3600)
  registerSecret(fresh)
  for (const res of await Promise.all(forced)) {
    t.equal(res.statusCode, 200)
    t.equal(res.json().access_token, fresh)
    t.equal(res.headers['cache-control'], 'no-store')
  }
  const odd = await app.inject({ method: 'POST', url: '/token/refresh', headers: { ...auth, 'content-type': 'application/xml' }, payload: '<x/>' })
  t.equal(odd.statusCode, 200, 'whatever body a client library sends is ignored')
})

t.test('GET /healthz: ok, degraded, unavailable, never a token', async (t) => {
  const { app, clock, transport, token } = await withToken(t)
  let res = await app.inject({ url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['cache-control'], 'no-store')
  t.match(res.json(), { status: 'ok', mode: 'auto-refresh', token: { expires_at: '2026-11-26T13:00:00.000Z', expires_in: 3600 }, last_refresh: { result: 'success' } })
  t.notMatch(res.body, token)
  t.notMatch(res.body, SECRET)

  await clock.advance(clock.pendingDelays()[0]!)
  transport.fail({ kind: 'config_error', status: 403, auth0Error: 'access_denied', auth0Description: 'Client is not authorized' })
  await flush()
  res = await app.inject({ url: '/healthz' })
  t.equal(res.statusCode, 200)
  t.match(res.json(), { status: 'degraded', last_refresh: { result: 'failure', error: 'access_denied', status: 403 } })
  t.notMatch(res.body, 'Client is not authorized', 'Auth0 descriptions stay in the log')

  await clock.advance(3600_000)
  res = await app.inject({ url: '/healthz' })
  t.equal(res.statusCode, 503)
  t.match(res.json(), { status: 'unavailable', token: null, last_refresh: { error: 'access_denied' } })
  t.equal((await app.inject({ method: 'HEAD', url: '/healthz' })).statusCode, 503)
})

t.test('unknown paths are JSON 404s, wrong methods JSON 405s', async (t) => {
  const { app } = await withToken(t)
  const missing = await app.inject({ url: `/tokens?secret=${SECRET}` })
  t.equal(missing.statusCode, 404)
  t.match(missing.json(), { error: 'not_found' })
  t.notMatch(missing.body, SECRET, 'the URL is not echoed')
  const cases: Array<[string, string, string]> = [
    ['POST', '/token', 'GET, HEAD'],
    ['DELETE', '/token', 'GET, HEAD'],
    ['GET', '/token/refresh', 'POST'],
    ['PUT', '/healthz', 'GET, HEAD']
  ]
  for (const [method, url, allow] of cases) {
    const res = await app.inject({ method: method as 'GET', url, headers: auth })
    t.equal(res.statusCode, 405, `${method} ${url}`)
    t.equal(res.headers.allow, allow)
    t.match(res.json(), { error: 'method_not_allowed' })
  }
})

t.test('405 Allow comes from the registered routes: a path the app does not serve is a 404 whatever the method', async (t) => {
  const { app } = await withToken(t)
  // This app has no metrics, so no /metrics route.
  for (const method of ['GET', 'PUT'] as const) {
    const res = await app.inject({ method, url: '/metrics' })
    t.equal(res.statusCode, 404, `${method} /metrics`)
    t.equal(res.headers.allow, undefined)
  }
  t.equal((await app.inject({ url: '/nope' })).json().error_description, 'no such endpoint; this sidecar serves GET /token, POST /token/refresh, and GET /healthz')
  const head = await app.inject({ method: 'PATCH', url: '/token' })
  t.equal(head.headers.allow, 'GET, HEAD', 'HEAD, which Fastify adds, is listed')
})

t.test('malformed requests get 4xx, never 5xx', async (t) => {
  const { app } = await withToken(t)
  const big = await app.inject({ method: 'POST', url: '/token/refresh', headers: { ...auth, 'content-type': 'application/json' }, payload: 'x'.repeat(10_000) })
  t.equal(big.statusCode, 413)
  t.match(big.json(), { error: 'payload_too_large' })
  const weird = await app.inject({ url: '/token?%zz=1&audience[]=x', headers: auth })
  t.ok(weird.statusCode < 500, `odd query: ${weird.statusCode}`)
  const longHeader = await app.inject({ url: '/token', headers: { authorization: `Bearer ${'x'.repeat(8000)}` } })
  t.equal(longHeader.statusCode, 401)
})

t.test('unexpected errors are a generic 500 without internals', async (t) => {
  const source: TokenSource = {
    mode: 'auto-refresh',
    start () {},
    current () { return undefined },
    serving () { return undefined },
    token () { return Promise.reject(new Error('internal detail: db password')) },
    forceRefresh () { return Promise.reject(Object.assign(new Error('conflict'), { statusCode: 409 })) },
    health () { throw new Error('x') },
    stop () {},
    async close () {}
  }
  const captured = captureLogger()
  const app = buildApp({ tokens: new TokenPool([[AUDIENCE, source]]), secret: new SidecarSecret(SECRET), logger: captured.logger })
  t.teardown(() => app.close())
  const res = await app.inject({ url: '/token', headers: auth })
  t.equal(res.statusCode, 500)
  t.same(res.json(), { error: 'internal_error', error_description: 'unexpected error; see the sidecar log' })
  t.ok(captured.lines().some((l) => l.level === 'error'), 'logged for the operator')
  const conflict = await app.inject({ method: 'POST', url: '/token/refresh', headers: auth })
  t.equal(conflict.statusCode, 409, 'a client error keeps its status')
  t.same(conflict.json(), { error: 'invalid_request', error_description: 'conflict' })
})

t.test('access logs are off at info and on at debug', async (t) => {
  const quiet = await withToken(t, 'info')
  await quiet.app.inject({ url: '/token', headers: auth })
  t.notOk(quiet.lines().some((l) => l.msg === 'incoming request' || l.msg === 'request completed'))

  const chatty = await withToken(t, 'debug')
  await chatty.app.inject({ url: '/token', headers: auth })
  const access = chatty.lines().filter((l) => l.msg === 'incoming request' || l.msg === 'request completed')
  t.equal(access.length, 2)
  const all = JSON.stringify(chatty.lines())
  t.notMatch(all, SECRET, 'the Authorization header is not logged')
  t.notMatch(all, chatty.token)
})

t.test('static mode serves the configured token', async (t) => {
  const captured = captureLogger()
  const source = new StaticToken({ token: 'static-opaque-token-value', logger: captured.logger, warnBeforeMs: 300_000 })
  registerSecret('static-opaque-token-value')
  const app = buildApp({ tokens: new TokenPool([[AUDIENCE, source]]), secret: new SidecarSecret(SECRET), logger: captured.logger })
  t.teardown(() => app.close())
  source.start()
  const res = await app.inject({ url: '/token', headers: auth })
  t.same(res.json(), { access_token: 'static-opaque-token-value', token_type: 'Bearer', expires_in: null, expires_at: null })
  t.same((await app.inject({ url: '/token', headers: auth })).body, res.body, 'the cached body, the same bytes')
  const refreshed = await app.inject({ method: 'POST', url: '/token/refresh', headers: auth })
  t.same(refreshed.json(), res.json(), 'a refresh cannot renew a static token: the same answer')
  t.match((await app.inject({ url: '/healthz' })).json(), { status: 'ok', mode: 'static', token: { expires_at: null, expires_in: null } })
})

t.test('closing the app closes the token source', async (t) => {
  const { app, clock } = await withToken(t)
  t.equal(clock.pendingDelays().length, 1)
  await app.close()
  t.same(clock.pendingDelays(), [])
})
