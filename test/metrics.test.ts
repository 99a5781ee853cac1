import t, { type Test } from 'tap'
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

t.test('Auth0 rate-limit headers become gauges', async (t) => {
  const headers = {
    'x-ratelimit-limit': '30',
    'x-ratelimit-remaining': '29',
    'x-ratelimit-reset': '1795700000'
  }
  const { lines, scrape } = await setup(t, { kind: 'token', headers })
  const text = await scrape()
  t.equal(value(text, 'tokensidecar_auth0_ratelimit_limit'), 30)
  t.equal(value(text, 'tokensidecar_auth0_ratelimit_remaining'), 29)
  t.equal(value(text, 'tokensidecar_auth0_ratelimit_reset_timestamp_seconds'), 1795700000)
  t.notMatch(text, /^tokensidecar_auth0_quota_limit\{/m, 'no quota headers, no quota series')
  t.equal(lines().filter((l) => l.event === 'auth0_quota_low').length, 0)
})

t.test('both quota headers, a bucket per part: gauges by scope and bucket, a warning naming each low bucket', async (t) => {
  const { lines, app } = await startSidecarApp(t, {
    secret: SECRET,
    env: { TOOLBRIDGE_AUTH0_ORGANIZATION: 'org_abc123' },
    auth0: {
      quotas: {
        client: [{ bucket: 'per_hour', limit: 10, resetSeconds: 3540, used: 9 }, { bucket: 'per_day', limit: 50, resetSeconds: 43200, used: 2 }],
        organization: [{ bucket: 'per_hour', limit: 100, resetSeconds: 3540 }, { bucket: 'per_day', limit: 1000, resetSeconds: 43200, used: 995 }]
      }
    }
  })
  const text = (await app.inject({ url: '/metrics' })).body
  const expected: Array<[string, string, number, number, number]> = [
    ['client', 'per_hour', 10, 0, 3540],
    ['client', 'per_day', 50, 47, 43200],
    ['organization', 'per_hour', 100, 99, 3540],
    ['organization', 'per_day', 1000, 4, 43200]
  ]
  for (const [scope, bucket, limit, remaining, reset] of expected) {
    const labels = `{scope="${scope}",bucket="${bucket}"}`
    t.equal(value(text, `tokensidecar_auth0_quota_limit${labels}`), limit, `${scope} ${bucket} limit`)
    t.equal(value(text, `tokensidecar_auth0_quota_remaining${labels}`), remaining, `${scope} ${bucket} remaining`)
    t.equal(value(text, `tokensidecar_auth0_quota_reset_seconds${labels}`), reset, `${scope} ${bucket} reset`)
  }
  t.equal(text.split('\n').filter((l) => l.startsWith('tokensidecar_auth0_quota_remaining{')).length, 4, 'no other series')
  const low = lines().filter((l) => l.event === 'auth0_quota_low')
  t.match(low, [
    { level: 'warn', scope: 'client_quota', bucket: 'per_hour', remaining: 0, limit: 10, reset_seconds: 3540, msg: 'Auth0 client quota per_hour nearly used up: 0 of 10 left' },
    { level: 'warn', scope: 'organization_quota', bucket: 'per_day', remaining: 4, limit: 1000, reset_seconds: 43200, msg: 'Auth0 organization quota per_day nearly used up: 4 of 1000 left' }
  ])
  t.equal(low.length, 2, 'only the buckets below 10 %')
})

t.test('quota headers on an error answer count too', async (t) => {
  const { lines, scrape } = await setup(t, {
    kind: 'status',
    status: 429,
    body: { error: 'too_many_requests', error_description: 'Client quota exceeded' },
    headers: { 'retry-after': '3000', 'auth0-client-quota-limit': 'b=per_hour;q=100;r=0;t=3000,b=per_day;q=1000;r=400;t=40000', 'x-ratelimit-limit': '30', 'x-ratelimit-remaining': '2', 'x-ratelimit-reset': '1795700000' }
  })
  const text = await scrape()
  t.equal(value(text, 'tokensidecar_auth0_quota_remaining{scope="client",bucket="per_hour"}'), 0)
  t.equal(value(text, 'tokensidecar_auth0_quota_remaining{scope="client",bucket="per_day"}'), 400)
  t.same(lines().filter((l) => l.event === 'auth0_quota_low').map((l) => [l.scope, l.bucket]), [['rate_limit', undefined], ['client_quota', 'per_hour']])
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
