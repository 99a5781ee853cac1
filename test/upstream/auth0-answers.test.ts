import t, { type Test } from 'tap'
import { globalLimit, type Behaviour, type FakeAuth0Options } from '../fixtures/fake-auth0.js'
import { until } from '../fixtures/fake-clock.js'
import { registerSecret } from '../fixtures/suite-log.js'
import { startSidecarApp } from '../fixtures/sidecar-app.js'

// Auth0's quota and limit answers, and the refusals an operator must act on,
// through the real app, engine and transport; only time is faked.
const SECRET = 'answers-sidecar-secret-0123456789abcdef'
const auth = { authorization: `Bearer ${SECRET}` }
registerSecret(SECRET)

function setup (t: Test, opts: { first?: Behaviour[], auth0?: FakeAuth0Options, env?: Record<string, string> } = {}) {
  return startSidecarApp(t, { secret: SECRET, ...opts })
}

t.test('a spent hourly quota: the 429 is waited out until the bucket resets, not retried within seconds', async (t) => {
  const { auth0, app, clock, lines, attempts } = await setup(t, {
    auth0: { quotas: { client: [{ bucket: 'per_hour', limit: 5, resetSeconds: 1800, used: 5 }, { bucket: 'per_day', limit: 100, resetSeconds: 43200, used: 5 }] } }
  })
  t.equal(auth0.tokenRequests(), 1)
  const token = await app.inject({ url: '/token', headers: auth })
  t.equal(token.statusCode, 503)
  t.equal(token.headers['retry-after'], '1800', 'clients are told the bucket\'s reset')
  const health = await app.inject({ url: '/healthz' })
  t.match(health.json(), { status: 'unavailable', last_refresh: { error: 'too_many_requests', status: 429, hint: 'the client quota\'s per_hour bucket (5 tokens) is used up; it resets in 1800 s' } })
  t.match(lines().find((l) => l.event === 'token_refresh_failed'), { level: 'warn', error_description: 'Client quota exceeded', retry_in_ms: 1_800_000, msg: /per_hour bucket \(5 tokens\) is used up/ })

  await clock.advance(1_799_000)
  t.equal(auth0.tokenRequests(), 1, 'not one request while the bucket is spent')
  t.equal((await app.inject({ method: 'POST', url: '/token/refresh', headers: auth })).statusCode, 503, 'a forced refresh does not spend a request either')
  t.equal(auth0.tokenRequests(), 1)
  auth0.quotas!.client![0]!.used = 0
  await clock.advance(1_000)
  await until(() => attempts() === 2)
  t.equal(auth0.tokenRequests(), 2)
  t.equal((await app.inject({ url: '/token', headers: auth })).statusCode, 200)
})

t.test('a spent daily quota is waited out for an hour at most, with a warning naming the bucket', async (t) => {
  const { auth0, clock, lines } = await setup(t, {
    auth0: { quotas: { client: [{ bucket: 'per_hour', limit: 5, resetSeconds: 600, used: 5 }, { bucket: 'per_day', limit: 5, resetSeconds: 43200, used: 5 }], retryAfterSeconds: 600 } }
  })
  t.match(lines().find((l) => l.event === 'retry_after_capped'), { retry_after: 'Auth0-Client-Quota-Limit: b=per_day;t=43200', retry_in_ms: 3_600_000 })
  await clock.advance(3_599_000)
  t.equal(auth0.tokenRequests(), 1, 'the hourly Retry-After does not cut the day\'s wait short')
})

t.test('Auth0\'s 500 "Global limit has been reached" waits for x-ratelimit-reset', async (t) => {
  const reset = Math.floor(Date.now() / 1000) + 120
  const { auth0, app, clock, attempts } = await setup(t, { first: [globalLimit(reset)] })
  t.match((await app.inject({ url: '/healthz' })).json(), { last_refresh: { error: 'access_denied', error_kind: 'http_error', status: 500 } })
  await clock.advance(118_000)
  t.equal(auth0.tokenRequests(), 1, 'no retry before the limit resets')
  await clock.advance(2_000)
  await until(() => attempts() === 2)
  t.equal(auth0.tokenRequests(), 2)
  t.equal((await app.inject({ url: '/token', headers: auth })).statusCode, 200)
})

for (const [status, behaviour, check] of [
  [401, { kind: 'status', status: 401, body: '' }, /^no OAuth error in the answer; check the client id and secret, and that the client is registered for client_secret_post \(TOOLBRIDGE_AUTH0_CLIENT_AUTH\)$/],
  [403, { kind: 'status', status: 403, body: '<html><body>Forbidden</body></html>', contentType: 'text/html' }, /^no OAuth error in the answer; check that the client is granted the audience https:\/\/toolbridgeapi\.erauner\.dev and the scope "read:things", and the client id and secret/]
] as const) {
  t.test(`${status} with ${behaviour.body === '' ? 'an empty' : 'a non-JSON'} body: a hint in the log line and on /healthz`, async (t) => {
    const { auth0, app, lines } = await setup(t, { first: [behaviour], env: { TOOLBRIDGE_AUTH0_SCOPE: 'read:things' } })
    const health = await app.inject({ url: '/healthz' })
    t.equal(health.statusCode, 503)
    const { last_refresh: last } = health.json() as { last_refresh: Record<string, unknown> }
    t.match(last, { error: `HTTP_${status}`, error_kind: 'config_error', status, hint: check })
    const failed = lines().find((l) => l.event === 'token_refresh_failed')
    t.match(failed, { level: 'error', code: `HTTP_${status}`, msg: new RegExp(`answered ${status}; no OAuth error in the answer; check `) })
    t.ok(String(failed?.msg).endsWith(String(last.hint)), 'the same hint in both')
    t.notMatch(JSON.stringify(lines()) + health.body, auth0.clientSecret)
  })
}

t.test('a granted scope narrower than the requested one: one warning naming what is missing, and /healthz shows it', async (t) => {
  const audiences = 'https://toolbridgeapi.erauner.dev https://reports.example'
  const { auth0, app, clock, lines, attempts } = await setup(t, {
    auth0: { expiresIn: 60, audiences: audiences.split(' '), scopes: ['read:things'] },
    env: { TOOLBRIDGE_AUTH0_SCOPE: 'read:things write:things admin', TOOLBRIDGE_AUTH0_AUDIENCE: audiences }
  })
  const warnings = (): Array<Record<string, unknown>> => lines().filter((l) => l.event === 'scope_narrowed')
  t.equal(warnings().length, 2, 'one per audience')
  t.match(warnings()[0], { level: 'warn', audience: 'https://toolbridgeapi.erauner.dev', missing_scopes: ['write:things', 'admin'], msg: 'the token endpoint granted less than the requested scope, without: write:things admin' })
  let health = (await app.inject({ url: '/healthz' })).json()
  t.match(health, { status: 'ok', missing_scopes: ['write:things', 'admin'] })
  t.same(health.audiences['https://reports.example'].missing_scopes, ['write:things', 'admin'])
  t.equal((await app.inject({ url: '/token', headers: auth })).statusCode, 200, 'the token is still served')

  await clock.advance(30_000)
  await until(() => attempts() === 4)
  t.equal(warnings().length, 2, 'the same narrowing is not logged again')

  auth0.scopes = ['read:things', 'write:things', 'admin']
  await clock.advance(30_000)
  await until(() => attempts() === 6)
  health = (await app.inject({ url: '/healthz' })).json()
  t.equal(health.missing_scopes, undefined, 'gone once the grant is whole')
  t.equal(health.audiences['https://reports.example'].missing_scopes, undefined)

  auth0.scopes = ['admin']
  await clock.advance(30_000)
  await until(() => attempts() === 8)
  t.equal(warnings().length, 4, 'a new narrowing is logged again')
  t.match(warnings()[2], { missing_scopes: ['read:things', 'write:things'] })
})
