import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config/load-config.js'
import { createSidecar } from '../../src/sidecar.js'
import { FakeAuth0, type Behaviour } from '../fixtures/fake-auth0.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'
import { startSidecarApp } from '../fixtures/sidecar-app.js'

const SECRET = 'scenario-sidecar-secret-0123456789abcdef'
const auth = { authorization: `Bearer ${SECRET}` }
registerSecret(SECRET)

function setup (t: Test, ...first: Behaviour[]) {
  return startSidecarApp(t, { secret: SECRET, first, env: { TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: '0.3' } })
}

/** Polls /token until the engine has taken the stand-in's answer. */
async function tokenOnceReady (app: Awaited<ReturnType<typeof setup>>['app']) {
  let res = await app.inject({ url: '/token', headers: auth })
  for (let i = 0; i < 200 && res.statusCode !== 200; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5))
    res = await app.inject({ url: '/token', headers: auth })
  }
  return res
}

t.test('success: a token from the stand-in, one upstream request for many calls', async (t) => {
  const { auth0, app } = await setup(t)
  for (let i = 0; i < 100; i++) {
    const res = await app.inject({ url: '/token', headers: auth })
    t.equal(res.statusCode, 200)
    t.equal(res.json().access_token, auth0.issued[0])
  }
  t.equal(auth0.tokenRequests(), 1)
  t.match((await app.inject({ url: '/healthz' })).json(), { status: 'ok', mode: 'auto-refresh' })
})

t.test('401 access_denied: health fails, the log says configuration error, no secret anywhere', async (t) => {
  const { auth0, app, lines } = await setup(t, { kind: 'status', status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } })
  const health = await app.inject({ url: '/healthz' })
  t.equal(health.statusCode, 503)
  t.match(health.json(), { status: 'unavailable', last_refresh: { result: 'failure', error: 'access_denied', error_kind: 'config_error', status: 401 } })
  const token = await app.inject({ url: '/token', headers: auth })
  t.equal(token.statusCode, 503)
  t.equal(token.headers['retry-after'], '60')
  t.match(token.json(), { error: 'token_unavailable' })
  const failed = lines().find((l) => l.event === 'token_refresh_failed')
  t.match(failed, { level: 'error', error: 'access_denied', error_description: 'Unauthorized', msg: /configuration error/ })
  const everything = JSON.stringify(lines()) + health.body + token.body
  t.notMatch(everything, auth0.clientSecret)
  t.notMatch(everything, SECRET)
})

t.test('403 unauthorized_client fails health with Auth0\'s error code', async (t) => {
  const { app } = await setup(t, { kind: 'status', status: 403, body: { error: 'unauthorized_client', error_description: "Grant type 'client_credentials' not allowed for the client." } })
  const health = await app.inject({ url: '/healthz' })
  t.equal(health.statusCode, 503)
  t.match(health.json(), { last_refresh: { error: 'unauthorized_client', status: 403 } })
  t.notMatch(health.body, 'Grant type', 'not the raw body')
})

t.test('429 with Retry-After: 503 says when, and the retry waits for it', async (t) => {
  const { auth0, app, clock } = await setup(t, { kind: 'status', status: 429, body: { error: 'too_many_requests', error_description: 'Rate limit' }, headers: { 'retry-after': '30' } })
  const res = await app.inject({ url: '/token', headers: auth })
  t.equal(res.statusCode, 503)
  t.equal(res.headers['retry-after'], '30')
  await clock.advance(29_000)
  t.equal(auth0.tokenRequests(), 1, 'nothing before Retry-After')
  await clock.advance(1_000)
  const ok = await tokenOnceReady(app)
  t.equal(ok.statusCode, 200)
  t.equal(auth0.tokenRequests(), 2)
})

t.test('500 then success after backoff', async (t) => {
  const { auth0, app, clock } = await setup(t, { kind: 'status', status: 500, body: 'oops', contentType: 'text/plain' })
  t.equal((await app.inject({ url: '/healthz' })).statusCode, 503)
  await clock.advance(1_000)
  const res = await tokenOnceReady(app)
  t.equal(res.statusCode, 200)
  t.equal(res.json().access_token, auth0.issued[0])
})

t.test('a hanging endpoint: requests wait at most the upstream timeout, then 503', async (t) => {
  const auth0 = await FakeAuth0.start()
  auth0.enqueue({ kind: 'hang' })
  const config = loadConfig({ ...auth0.sidecarEnv(SECRET), TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: '0.3' })
  const captured = captureLogger()
  const { app, tokens: { default: source } } = createSidecar(config, captured.logger, { random: () => 0.5 })
  t.teardown(async () => {
    await app.close()
    await auth0.close()
  })
  source.start()
  const started = Date.now()
  const res = await app.inject({ url: '/token', headers: auth })
  const waited = Date.now() - started
  t.equal(res.statusCode, 503)
  t.ok(waited >= 200 && waited < 2000, `waited ${waited} ms for the in-flight request`)
  t.match((await app.inject({ url: '/healthz' })).json(), { status: 'unavailable', last_refresh: { error: 'TIMEOUT', error_kind: 'network_error' } })
})

t.test('malformed JSON and HTML bodies are failed attempts, never served', async (t) => {
  for (const behaviour of [
    { kind: 'status', status: 200, body: '{"access_token":"half' },
    { kind: 'status', status: 200, body: '<!doctype html><html>Sign in</html>', contentType: 'text/html' }
  ] as Behaviour[]) {
    const { app } = await setup(t, behaviour)
    const res = await app.inject({ url: '/token', headers: auth })
    t.equal(res.statusCode, 503)
    t.match((await app.inject({ url: '/healthz' })).json(), { last_refresh: { error_kind: 'invalid_response' } })
  }
})

t.test('Retry-After: 99999999999999999999 — /healthz still answers (503, not 500) and /token says an hour', async (t) => {
  const { app, clock, auth0, lines } = await setup(t, { kind: 'status', status: 429, body: { error: 'too_many_requests' }, headers: { 'retry-after': '99999999999999999999' } })
  const health = await app.inject({ url: '/healthz' })
  t.equal(health.statusCode, 503)
  t.match(health.json(), { status: 'unavailable', next_refresh_at: String })
  const token = await app.inject({ url: '/token', headers: auth })
  t.equal(token.statusCode, 503)
  t.equal(token.headers['retry-after'], '3600', 'a sane whole number of seconds')
  t.match(lines().find((l) => l.event === 'retry_after_capped'), { level: 'warn', retry_after: 'Retry-After: 99999999999999999999' })
  await clock.advance(3_600_000 - 1)
  t.equal(auth0.tokenRequests(), 1, 'no request for an hour')
})

for (const expiresIn of [0.001, 1e13]) {
  t.test(`expires_in ${expiresIn}: an invalid response with backoff, never a fetch loop or a success`, async (t) => {
    const { app, clock, auth0, lines } = await setup(t, ...Array.from({ length: 100 }, () => ({ kind: 'token' as const, expiresIn })))
    // Five seconds of the engine's time, timers firing as they come.
    for (let i = 0; i < 50; i++) {
      await clock.advance(100)
      await new Promise((resolve) => setTimeout(resolve, 2))
    }
    // The test's random() is 0, so each retry waits the 100 ms backoff floor; today's
    // real jitter waits longer. The old code took 0.001 s as a lifetime: ~2,000 requests.
    t.ok(auth0.tokenRequests() <= 51, `${auth0.tokenRequests()} requests in 5 s`)
    const failed = lines().filter((l) => l.event === 'token_refresh_failed')
    t.ok(failed.length >= 1)
    t.match(failed[0], { error_kind: 'invalid_response', msg: /expires_in .* is outside/ })
    t.equal(lines().filter((l) => l.event === 'token_refreshed').length, 0, 'never counted as a success')
    t.equal((await app.inject({ url: '/healthz' })).statusCode, 503)
  })
}
