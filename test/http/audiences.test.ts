import t, { type Test } from 'tap'
import { FORCED_REFRESH_POLICY } from '../../src/engine/schedule.js'
import { TokenPool } from '../../src/engine/token-pool.js'
import type { FakeAuth0Options } from '../fixtures/fake-auth0.js'
import { registerSecret } from '../fixtures/suite-log.js'
import { startSidecarApp } from '../fixtures/sidecar-app.js'

const SECRET = 'audiences-sidecar-secret-0123456789abcdef'
const auth = { authorization: `Bearer ${SECRET}` }
registerSecret(SECRET)

const A = 'https://api.example'
const B = 'https://reports.example/v1'
const C = 'urn:toolbridge:admin'

function setup (t: Test, auth0: FakeAuth0Options = { audiences: [A, B, C] }) {
  return startSidecarApp(t, { secret: SECRET, auth0, env: { TOOLBRIDGE_AUTH0_AUDIENCE: `${A}, ${B}\n${C}` } })
}

const claims = (token: string): { aud: string } => JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { aud: string }
const query = (audience: string): string => `?audience=${encodeURIComponent(audience)}`

t.test('one token per audience, fetched at start-up; ?audience= picks one, the first is the default', async (t) => {
  const { auth0, app } = await setup(t)
  t.equal(auth0.tokenRequests(), 3)
  for (const audience of [A, B, C]) t.equal(auth0.requestsFor(audience), 1, `one request for ${audience}`)

  const plain = await app.inject({ url: '/token', headers: auth })
  t.equal(plain.statusCode, 200)
  t.equal(claims(plain.json().access_token).aud, A, 'no ?audience= serves the first')
  for (const audience of [A, B, C]) {
    const res = await app.inject({ url: `/token${query(audience)}`, headers: auth })
    t.equal(res.statusCode, 200, audience)
    t.equal(claims(res.json().access_token).aud, audience)
    t.equal(res.headers['cache-control'], 'no-store')
  }
  t.equal(auth0.tokenRequests(), 3, 'served from memory')
})

t.test('an audience that is not configured is 400 invalid_request, naming the ones that are', async (t) => {
  const { app } = await setup(t)
  for (const url of [`/token${query('https://other.example')}`, '/token?audience=', `/token?audience=${encodeURIComponent(A)}&audience=${encodeURIComponent(B)}`, `/token${query(`${A},${B}`)}`]) {
    const res = await app.inject({ url, headers: auth })
    t.equal(res.statusCode, 400, url)
    t.same(res.json(), { error: 'invalid_request', error_description: `this sidecar serves tokens for these audiences only: ${A}, ${B}, ${C}` })
    const refresh = await app.inject({ method: 'POST', url: url.replace('/token', '/token/refresh'), headers: auth })
    t.equal(refresh.statusCode, 400, `POST ${url}`)
  }
  const unauthenticated = await app.inject({ url: `/token${query('https://other.example')}` })
  t.equal(unauthenticated.statusCode, 401, 'the secret is checked first: no audience list for strangers')
})

t.test('one upstream request per audience per lifetime', async (t) => {
  const { auth0, app, clock } = await setup(t)
  auth0.expiresIn = 3600
  // The start-up tokens live a day; then each audience refreshes on its own timer.
  for (let hour = 0; hour < 30; hour++) {
    await clock.advance(3_600_000)
    for (const audience of [A, B, C]) t.equal((await app.inject({ url: `/token${query(audience)}`, headers: auth })).statusCode, 200)
  }
  // Start-up tokens live a day (refreshed at 86400 − 300 s); then 1-hour tokens every 3600 − 300 s
  // (random 0: no jitter). In 30 hours: start-up + refreshes at 86100, 89400, … 105900 s = 8.
  t.same([A, B, C].map((audience) => auth0.requestsFor(audience)), [8, 8, 8], 'one request per audience per lifetime')
})

t.test('one audience failing does not stop the others; health names it and answers 503', async (t) => {
  // The stand-in grants only A and C: B is refused (403), a configuration error.
  const { auth0, app } = await setup(t, { audiences: [A, C] })
  t.equal((await app.inject({ url: '/token', headers: auth })).statusCode, 200)
  t.equal((await app.inject({ url: `/token${query(C)}`, headers: auth })).statusCode, 200)
  const b = await app.inject({ url: `/token${query(B)}`, headers: auth })
  t.equal(b.statusCode, 503)
  t.match(b.json(), { error: 'token_unavailable', error_description: /latest token refresh failed \(access_denied\)/ })

  const health = await app.inject({ url: '/healthz' })
  t.equal(health.statusCode, 503, 'a deploy with one broken grant fails its check')
  const body = health.json()
  t.match(body, { status: 'unavailable', unavailable_audiences: [B] }, 'the top-level status agrees with the 503')
  t.match(body, { mode: 'auto-refresh', token: { expires_in: Number }, audience: A }, 'the other top-level fields keep describing the default audience')
  t.same(Object.keys(body.audiences), [A, B, C])
  t.match(body.audiences[A], { status: 'ok' })
  t.match(body.audiences[B], { status: 'unavailable', token: null, last_refresh: { result: 'failure', error: 'access_denied', error_kind: 'config_error', status: 403 } })
  t.match(body.audiences[C], { status: 'ok' })
  t.notMatch(JSON.stringify(body), /eyJ/, 'no token in health output')
  t.equal(auth0.requestsFor(B), 1)
})

t.test('forced refreshes, spacing and single flight are per audience', async (t) => {
  const { auth0, app, clock } = await setup(t)
  await clock.advance(FORCED_REFRESH_POLICY.minSpacingMs)
  const first = await app.inject({ method: 'POST', url: `/token/refresh${query(B)}`, headers: auth })
  t.equal(first.statusCode, 200)
  t.equal(claims(first.json().access_token).aud, B)
  t.equal(auth0.requestsFor(B), 2, 'B fetched')
  t.equal(auth0.requestsFor(A), 1, 'A untouched')
  const again = await app.inject({ method: 'POST', url: `/token/refresh${query(B)}`, headers: auth })
  t.equal(again.json().access_token, first.json().access_token, 'B refused: too soon')
  const a = await Promise.all([1, 2, 3].map(() => app.inject({ method: 'POST', url: '/token/refresh', headers: auth })))
  t.equal(new Set(a.map((r) => r.json().access_token)).size, 1, 'concurrent forced refreshes of A share one fetch')
  t.equal(auth0.requestsFor(A), 2, 'A has its own spacing: allowed once')
  const metrics = (await app.inject({ url: '/metrics' })).body
  t.match(metrics, `tokensidecar_forced_refresh_refused_total{audience="${B}",reason="too_soon"} 1`)
  t.match(metrics, `tokensidecar_token_refresh_attempts_total{audience="${C}",result="success",trigger="startup"} 1`)
  t.match(metrics, `tokensidecar_token_valid{audience="${B}"} 1`)
  t.match(metrics, new RegExp(`tokensidecar_token_expires_in_seconds\\{audience="${A}"\\} \\d+`))
  t.match(metrics, `tokensidecar_token_lifetime_seconds{audience="${A}"} 86400`)
})

t.test('several audiences in the start-up log line, with the client authentication', async (t) => {
  const { lines } = await setup(t)
  const started = lines().filter((l) => l.event === 'token_manager_initialized')
  t.same(started.map((l) => l.audience), [A, B, C])
  t.match(started[0], { client_auth: 'client_secret_post', client_id: 'test-client-id', component: 'token-engine' })
  t.ok(lines().filter((l) => l.event === 'token_refreshed').every((l) => [A, B, C].includes(l.audience as string)), 'every engine line names its audience')
})

t.test('a token pool needs at least one audience', async (t) => {
  t.throws(() => new TokenPool([]), /at least one audience/)
})
