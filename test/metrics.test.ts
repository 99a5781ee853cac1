import t, { type Test } from 'tap'
import { lowQuotas, parseQuota, parseRateLimit } from '../src/upstream/rate-limit.js'
import type { Behaviour } from './fixtures/fake-auth0.js'
import { until } from './fixtures/fake-clock.js'
import { registerSecret } from './fixtures/suite-log.js'
import { startSidecarApp } from './fixtures/sidecar-app.js'

const SECRET = 'metrics-sidecar-secret-0123456789abcdef'
const auth = { authorization: `Bearer ${SECRET}` }
registerSecret(SECRET)

async function setup (t: Test, ...first: Behaviour[]) {
  const { auth0, app, clock, lines, attempts } = await startSidecarApp(t, { secret: SECRET, first, auth0: { expiresIn: 3600 } })
  const scrape = async (): Promise<string> => {
    const res = await app.inject({ url: '/metrics' })
    t.equal(res.statusCode, 200)
    t.match(res.headers['content-type'], /^text\/plain; version=0\.0\.4/)
    return res.body
  }
  return { auth0, app, clock, lines, attempts, scrape }
}

function value (text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

t.test('after a successful start-up: attempts, lifetime, expiry, validity, duration', async (t) => {
  const { app, clock, scrape } = await setup(t)
  await clock.advance(100_000)
  const text = await scrape()
  t.equal(value(text, 'tokensidecar_token_refresh_attempts_total{audience="https://toolbridgeapi.erauner.dev",result="success",trigger="startup"}'), 1)
  t.equal(value(text, 'tokensidecar_token_lifetime_seconds{audience="https://toolbridgeapi.erauner.dev"}'), 3600)
  t.equal(value(text, 'tokensidecar_token_expires_in_seconds{audience="https://toolbridgeapi.erauner.dev"}'), 3500)
  t.equal(value(text, 'tokensidecar_token_valid{audience="https://toolbridgeapi.erauner.dev"}'), 1)
  t.equal(Math.round(value(text, 'tokensidecar_token_refreshes_per_hour{audience="https://toolbridgeapi.erauner.dev"}')! * 100), 109, 'one refresh every 3300 s')
  t.equal(value(text, 'tokensidecar_token_request_duration_seconds_count{audience="https://toolbridgeapi.erauner.dev",result="success"}'), 1)
  t.match(text, /^process_cpu_user_seconds_total /m, 'Node.js default metrics')
  t.match(text, /^nodejs_eventloop_lag_seconds /m)

  await app.inject({ url: '/token', headers: auth })
  await app.inject({ url: '/token', headers: auth })
  await app.inject({ url: '/token' })
  await app.inject({ url: '/token?audience=x', headers: auth })
  const after = await scrape()
  t.equal(value(after, 'tokensidecar_token_responses_total{route="/token",code="200"}'), 2)
  t.equal(value(after, 'tokensidecar_token_responses_total{route="/token",code="401"}'), 1)
  t.equal(value(after, 'tokensidecar_token_responses_total{route="/token",code="400"}'), 1)
  const again = await scrape()
  t.equal(value(again, 'tokensidecar_token_responses_total{route="/token",code="401"}'), 1, 'a count does not grow between scrapes')
})

t.test('failures by result, then a forced refresh', async (t) => {
  const { app, auth0, clock, attempts, scrape } = await setup(t,
    { kind: 'status', status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } })
  let text = await scrape()
  t.equal(value(text, 'tokensidecar_token_refresh_attempts_total{audience="https://toolbridgeapi.erauner.dev",result="config_error",trigger="startup"}'), 1)
  t.equal(value(text, 'tokensidecar_token_valid{audience="https://toolbridgeapi.erauner.dev"}'), 0)
  t.ok(Number.isNaN(value(text, 'tokensidecar_token_expires_in_seconds{audience="https://toolbridgeapi.erauner.dev"}')), 'NaN with no token')
  t.equal((await app.inject({ url: '/token', headers: auth })).statusCode, 503)

  auth0.enqueue({ kind: 'status', status: 500, body: 'boom', contentType: 'text/plain' }, { kind: 'status', status: 200, body: '{"nope":1}' })
  await clock.advance(60_000)
  await until(() => attempts() === 2)
  await clock.advance(1_000)
  await until(() => attempts() === 3)
  await clock.advance(2_000)
  await until(() => attempts() === 4)
  await clock.advance(11_000)
  t.equal((await app.inject({ method: 'POST', url: '/token/refresh', headers: auth })).statusCode, 200)
  text = await scrape()
  t.equal(value(text, 'tokensidecar_token_refresh_attempts_total{audience="https://toolbridgeapi.erauner.dev",result="http_error",trigger="retry"}'), 1)
  t.equal(value(text, 'tokensidecar_token_refresh_attempts_total{audience="https://toolbridgeapi.erauner.dev",result="invalid_response",trigger="retry"}'), 1)
  t.equal(value(text, 'tokensidecar_token_refresh_attempts_total{audience="https://toolbridgeapi.erauner.dev",result="success",trigger="retry"}'), 1)
  t.equal(value(text, 'tokensidecar_token_refresh_attempts_total{audience="https://toolbridgeapi.erauner.dev",result="success",trigger="forced"}'), 1)
  t.equal(value(text, 'tokensidecar_token_responses_total{route="/token",code="503"}'), 1)
  t.equal(value(text, 'tokensidecar_token_responses_total{route="/token/refresh",code="200"}'), 1)
  t.equal(auth0.tokenRequests(), 5, 'one counted attempt per upstream request')
})

t.test('a network failure is counted as network_error', async (t) => {
  const { auth0, clock, attempts, scrape } = await setup(t)
  await auth0.close()
  await clock.advance(3600_000 - 300_000)
  await until(() => attempts() === 2)
  t.equal(value(await scrape(), 'tokensidecar_token_refresh_attempts_total{audience="https://toolbridgeapi.erauner.dev",result="network_error",trigger="timer"}'), 1)
})

t.test('Auth0 rate-limit and quota headers become gauges; a low quota is a warning', async (t) => {
  const headers = {
    'x-ratelimit-limit': '30',
    'x-ratelimit-remaining': '29',
    'x-ratelimit-reset': '1795700000',
    'auth0-client-quota-limit': 'b=per_hour;q=100;r=5;t=1200',
    'auth0-tenant-quota-limit': 'q=1000;r=900;t=86400'
  }
  const { lines, scrape } = await setup(t, { kind: 'token', headers })
  const text = await scrape()
  t.equal(value(text, 'tokensidecar_auth0_ratelimit_limit'), 30)
  t.equal(value(text, 'tokensidecar_auth0_ratelimit_remaining'), 29)
  t.equal(value(text, 'tokensidecar_auth0_ratelimit_reset_timestamp_seconds'), 1795700000)
  t.equal(value(text, 'tokensidecar_auth0_quota_limit{scope="client",bucket="per_hour"}'), 100)
  t.equal(value(text, 'tokensidecar_auth0_quota_remaining{scope="client",bucket="per_hour"}'), 5)
  t.equal(value(text, 'tokensidecar_auth0_quota_reset_seconds{scope="client",bucket="per_hour"}'), 1200)
  t.equal(value(text, 'tokensidecar_auth0_quota_remaining{scope="tenant",bucket="unspecified"}'), 900)
  const low = lines().filter((l) => l.event === 'auth0_quota_low')
  t.equal(low.length, 1, 'only the client quota is below 10 %')
  t.match(low[0], { level: 'warn', scope: 'client_quota', remaining: 5, limit: 100, bucket: 'per_hour', reset_seconds: 1200 })
})

t.test('quota headers on an error answer count too', async (t) => {
  const { lines, scrape } = await setup(t, {
    kind: 'status',
    status: 429,
    body: { error: 'too_many_requests', error_description: 'Client quota exceeded' },
    headers: { 'retry-after': '3000', 'auth0-client-quota-limit': 'b=per_hour;q=100;r=0;t=3000', 'x-ratelimit-limit': '30', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '1795700000' }
  })
  t.equal(value(await scrape(), 'tokensidecar_auth0_quota_remaining{scope="client",bucket="per_hour"}'), 0)
  t.same(lines().filter((l) => l.event === 'auth0_quota_low').map((l) => l.scope), ['rate_limit', 'client_quota'])
})

t.test('/metrics never carries a token or a secret', async (t) => {
  const { app, auth0, scrape } = await setup(t)
  await app.inject({ url: '/token', headers: auth })
  const text = await scrape()
  t.notMatch(text, auth0.issued[0]!)
  t.notMatch(text, auth0.clientSecret)
  t.notMatch(text, SECRET)
  t.equal((await app.inject({ method: 'POST', url: '/metrics' })).statusCode, 405)
})

t.test('header parsing', async (t) => {
  t.same(parseQuota('b=per_hour;q=100;r=50;t=3600'), { bucket: 'per_hour', limit: 100, remaining: 50, resetSeconds: 3600 })
  t.same(parseQuota('q=100; r=50; t=3600'), { bucket: undefined, limit: 100, remaining: 50, resetSeconds: 3600 })
  t.equal(parseQuota('b=per_day;q=100;r=x;t=1'), undefined)
  t.equal(parseQuota('garbage'), undefined)
  t.equal(parseQuota(undefined), undefined)
  t.same(parseRateLimit({}), {})
  t.same(parseRateLimit({ 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '3' }), {}, 'incomplete: ignored')
  t.same(parseRateLimit({ 'x-ratelimit-limit': ['10', '11'], 'x-ratelimit-remaining': '3', 'x-ratelimit-reset': '5' }), { rateLimit: { limit: 10, remaining: 3, resetEpochSeconds: 5 } })
  t.same(lowQuotas({ rateLimit: { limit: 10, remaining: 1, resetEpochSeconds: 0 } }), [])
  t.same(lowQuotas({ rateLimit: { limit: 11, remaining: 1, resetEpochSeconds: 0 } }), [{ scope: 'rate_limit', remaining: 1, limit: 11 }])
  t.same(lowQuotas({ tenantQuota: { bucket: undefined, limit: 100, remaining: 9, resetSeconds: 60 } }), [{ scope: 'tenant_quota', remaining: 9, limit: 100, reset_seconds: 60 }])
})

t.test('the shared store\'s part: reads and lock waits, by audience', async (t) => {
  const { createMetrics } = await import('../src/metrics/metrics.js')
  const metrics = createMetrics({ audiences: ['https://a.example'], current: () => undefined })
  const observer = metrics.storeObserver('https://a.example')
  observer.read('oversized')
  observer.lockWait('adopted')
  observer.lockWait('timed_out')
  const text = await metrics.registry.metrics()
  t.equal(value(text, 'tokensidecar_token_store_reads_total{audience="https://a.example",result="oversized"}'), 1)
  t.equal(value(text, 'tokensidecar_token_store_lock_waits_total{audience="https://a.example",result="adopted"}'), 1)
  t.equal(value(text, 'tokensidecar_token_store_lock_waits_total{audience="https://a.example",result="timed_out"}'), 1)
})
