import t from 'tap'
import { TokenUnavailableError } from '../../src/engine/errors.js'
import { MAX_TIMER_MS } from '../../src/engine/schedule.js'
import { TokenManager } from '../../src/engine/token-manager.js'
import { FakeClock, flush } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'
import { MemoryLogger } from '../fixtures/memory-logger.js'
import { engine, S } from '../fixtures/engine.js'

const setup = engine

t.test('fetches eagerly at start-up and logs the contract messages', async (t) => {
  const { transport, logger, manager } = setup(t)
  manager.start()
  t.equal(transport.open, 1, 'one request at start-up')
  const init = logger.entries.find((e) => e.msg === 'Auth0 token manager initialized')
  t.match(init, { level: 'info', domain: 'tenant.example.com', audience: 'https://api.example', client_id: 'cid', refresh_buffer_seconds: 300 })
  const token = transport.succeed(86400)
  await flush()
  t.equal(manager.current()?.accessToken, token)
  const refreshed = logger.entries.find((e) => e.msg === 'Auth0 token refreshed')
  t.match(refreshed, { level: 'info', event: 'token_refreshed', trigger: 'startup', expires_in: 86400, expires_at: '2026-11-27T12:00:00.000Z' })
  t.notOk(JSON.stringify(logger.entries).includes(token), 'the token itself is never logged')
})

t.test('refreshes on a timer at expiry minus the buffer', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  transport.succeed(86400)
  await flush()
  t.same(clock.pendingDelays(), [86100 * S])
  await clock.advance(86100 * S - 1)
  t.equal(transport.open, 0, 'not a millisecond early')
  await clock.advance(1)
  t.equal(transport.open, 1, 'refresh request sent')
  t.ok(manager.current(), 'the old token is served while the refresh is in flight')
  transport.succeed(86400)
  await flush()
  t.same(clock.pendingDelays(), [86100 * S], 'the next refresh is scheduled from the new token')
})

t.test('jitter moves the refresh earlier, within bounds', async (t) => {
  const { clock, transport, manager } = setup(t, { random: () => 0.5 })
  manager.start()
  transport.succeed(86400)
  await flush()
  t.same(clock.pendingDelays(), [86100 * S - 30 * S])
})

t.test('a 30-day token: chained timers fire once, at the right time', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  transport.succeed(2_592_000)
  await flush()
  t.equal(clock.pendingDelays()[0], MAX_TIMER_MS, 'no timer longer than Node allows')
  await clock.advance(2_592_000 * S - 300 * S - 1)
  t.equal(transport.open, 0, 'no early refresh after re-arming')
  await clock.advance(1)
  t.equal(transport.open, 1)
})

t.test('a 60-second token refreshes at half its lifetime; a 2-second one too', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  transport.succeed(60)
  await flush()
  t.same(clock.pendingDelays(), [30 * S])
  await clock.advance(30 * S)
  t.equal(transport.open, 1)
  transport.succeed(2)
  await flush()
  t.same(clock.pendingDelays(), [1 * S])
})

t.test('never serves an expired token', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  transport.succeed(60)
  await flush()
  await clock.advance(30 * S)
  transport.fail({ status: 503 })
  await flush()
  // The retry is pending; advance past expiry without answering any further request.
  await clock.advance(29 * S)
  t.ok(manager.current(), 'served while a second is left')
  await clock.advance(1)
  t.equal(manager.current(), undefined, 'not served in its last second')
  t.equal(manager.health().status, 'unavailable')
})

t.test('failures back off exponentially and keep the cached token', async (t) => {
  const { clock, transport, logger, manager } = setup(t, { random: () => 0.999 })
  manager.start()
  transport.succeed(3600)
  await flush()
  await clock.advance(clock.pendingDelays()[0]!)
  const delays: number[] = []
  for (let i = 0; i < 8; i++) {
    t.equal(transport.open, 1, `attempt ${i + 1} open`)
    transport.fail({ status: 500 })
    await flush()
    const delay = clock.pendingDelays()[0]!
    delays.push(delay)
    await clock.advance(delay)
  }
  t.same(delays, [999, 1998, 3996, 7992, 15984, 31968, 59940, 59940])
  const failed = logger.events('token_refresh_failed')
  t.equal(failed.length, 8)
  t.match(failed[1], { level: 'warn', trigger: 'retry', attempt: 2, retry_in_ms: 1998, status: 500 })
  t.equal(manager.health().status, 'degraded', 'still serving, but degraded')
  transport.succeed(3600)
  await flush()
  t.equal(manager.health().status, 'ok')
  t.match(manager.health().last_refresh, { result: 'success', trigger: 'retry', attempt: 9 })
})

t.test('honours Retry-After on 429', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  transport.fail({ status: 429, retryAfterMs: 42 * S, auth0Error: 'too_many_requests' })
  await flush()
  t.same(clock.pendingDelays(), [42 * S])
  await clock.advance(42 * S - 1)
  t.equal(transport.open, 0, 'no retry before Retry-After')
  await clock.advance(1)
  t.equal(transport.open, 1)
})

t.test('configuration errors are logged as such with Auth0 error fields', async (t) => {
  const { clock, transport, logger, manager } = setup(t)
  manager.start()
  transport.fail({ kind: 'config_error', status: 401, code: 'HTTP_401', auth0Error: 'access_denied', auth0Description: 'Unauthorized' })
  await flush()
  const [failed] = logger.events('token_refresh_failed')
  t.match(failed, { level: 'error', error_kind: 'config_error', error: 'access_denied', error_description: 'Unauthorized', status: 401, retry_in_ms: 60 * S })
  t.match(failed?.msg, /configuration error/)
  t.match(manager.health(), { status: 'unavailable', token: null, last_refresh: { result: 'failure', error: 'access_denied', error_kind: 'config_error', status: 401 } })
  t.same(clock.pendingDelays(), [60 * S])
})

t.test('token() waits for the in-flight fetch, then answers or says when to retry', async (t) => {
  const { transport, manager } = setup(t, { random: () => 0.5 })
  manager.start()
  const waiting = manager.token()
  transport.succeed(3600)
  t.equal((await waiting).expiresAt !== null, true)

  const second = setup(t, { random: () => 0.5 })
  second.manager.start()
  const failing = second.manager.token()
  second.transport.fail({ status: 503, retryAfterMs: 7 * S })
  const err = await failing.catch((e: unknown) => e)
  t.type(err, TokenUnavailableError)
  t.equal((err as TokenUnavailableError).retryAfterSeconds, 7)
  t.equal(second.transport.open, 0, 'asking again during backoff does not fetch')
  await t.rejects(second.manager.token(), { code: 'TOKEN_UNAVAILABLE' })
  t.equal(second.transport.open, 0)
})

t.test('single flight: start-up, many waiters and forced refreshes share one request', async (t) => {
  const { transport, manager } = setup(t)
  manager.start()
  const waiters = Array.from({ length: 50 }, () => manager.token())
  const forced = Array.from({ length: 5 }, () => manager.forceRefresh())
  await flush()
  t.equal(transport.open, 1, 'one upstream request')
  const token = transport.succeed(3600)
  for (const served of await Promise.all([...waiters, ...forced])) t.equal(served.accessToken, token)
  t.equal(transport.open, 0)
})

t.test('the in-flight slot is cleared after success and after failure', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  transport.fail({ status: 500 })
  await flush()
  await clock.advance(clock.pendingDelays()[0]!)
  t.equal(transport.open, 1, 'a failed request does not block the next one')
  transport.succeed(3600)
  await flush()
  await clock.advance(11 * S)
  const forced = manager.forceRefresh()
  t.equal(transport.open, 1, 'a succeeded request does not block the next one')
  const token = transport.succeed(3600)
  t.equal((await forced).accessToken, token)
})

t.test('forced refresh: a token younger than 10 s is returned without a fetch', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  const first = transport.succeed(3600)
  await flush()
  await clock.advance(9 * S)
  t.equal((await manager.forceRefresh()).accessToken, first)
  t.equal(transport.open, 0)
  await clock.advance(1 * S)
  const forced = manager.forceRefresh()
  t.equal(transport.open, 1, 'at 10 s it fetches')
  const second = transport.succeed(3600)
  t.equal((await forced).accessToken, second)
  t.match(manager.health().last_refresh, { trigger: 'forced' })
})

t.test('forced refresh never hits the upstream during a Retry-After wait', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  const first = transport.succeed(3600)
  await flush()
  await clock.advance(60 * S)
  const forced = manager.forceRefresh()
  transport.fail({ status: 429, retryAfterMs: 600 * S })
  t.equal((await forced).accessToken, first, 'failed forced fetch: the still-valid token is served')
  t.equal((await manager.forceRefresh()).accessToken, first)
  t.equal(transport.open, 0, 'no request before Retry-After')
})

t.test('close stops the timer and ignores a late answer', async (t) => {
  const { clock, transport, logger, manager } = setup(t)
  manager.start()
  const call = transport.calls[0]!
  void manager.close()
  t.ok(call.signal.aborted, 'the in-flight request is aborted')
  transport.succeed(3600)
  await flush()
  t.equal(manager.current(), undefined)
  t.same(clock.pendingDelays(), [])
  t.equal(logger.events('token_refreshed').length, 0)
  await t.rejects(manager.forceRefresh(), { code: 'TOKEN_UNAVAILABLE' })
  t.equal(transport.open, 0, 'nothing is fetched after close')
})

t.test('health reports ok, degraded and unavailable without the token', async (t) => {
  const { clock, transport, manager } = setup(t)
  t.match(manager.health(), { status: 'unavailable', mode: 'auto-refresh', token: null, last_refresh: null })
  manager.start()
  const token = transport.succeed(3600)
  await flush()
  await clock.advance(100 * S)
  t.match(manager.health(), { status: 'ok', token: { expires_in: 3500, expires_at: '2026-11-26T13:00:00.000Z' }, last_refresh: { result: 'success', trigger: 'startup' } })
  t.notOk(JSON.stringify(manager.health()).includes(token))
})

t.test('observer hears every attempt with result, trigger, duration and lifetime', async (t) => {
  const clock = new FakeClock()
  const transport = new FakeTransport()
  const seen: unknown[] = []
  const manager = new TokenManager({ transport, logger: new MemoryLogger(), refreshBufferMs: 300 * S, clock, timers: clock, random: () => 0, observer: { attempt: (e) => seen.push(e) } })
  t.teardown(() => manager.close())
  manager.start()
  await clock.advance(250)
  transport.fail({ kind: 'config_error', status: 401 })
  await flush()
  await clock.advance(60 * S)
  transport.succeed(3600)
  await flush()
  t.same(seen, [
    { trigger: 'startup', result: 'config_error', durationMs: 250 },
    { trigger: 'retry', result: 'success', durationMs: 0, lifetimeSeconds: 3600, source: 'upstream' }
  ])
})

t.test('warns once when the held token nears expiry and refreshes keep failing', async (t) => {
  const { clock, transport, logger, manager } = setup(t, { random: () => 0.999 })
  manager.start()
  transport.succeed(600)
  await flush()
  await clock.advance(clock.pendingDelays()[0]!)
  // Fail every attempt until the token is gone.
  while (manager.current() !== undefined) {
    if (transport.open > 0) transport.fail({ status: 503 })
    await flush()
    await clock.advance(Math.min(...clock.pendingDelays()))
  }
  const warnings = logger.events('token_expiring')
  t.equal(warnings.length, 1, 'once per token')
  t.match(warnings[0], { level: 'warn', expires_in: 60, attempt: Number, retry_in_ms: Number })
})

t.test('no expiry warning when a retry succeeds first', async (t) => {
  const { clock, transport, logger, manager } = setup(t, { random: () => 0 })
  manager.start()
  transport.succeed(600)
  await flush()
  await clock.advance(clock.pendingDelays()[0]!)
  transport.fail({ status: 500 })
  await flush()
  await clock.advance(100)
  transport.succeed(600)
  await flush()
  await clock.advance(600 * S)
  t.equal(logger.events('token_expiring').length, 0)
})

t.test('a 30-day token that stops refreshing still warns on time', async (t) => {
  const { clock, transport, logger, manager } = setup(t)
  manager.start()
  transport.succeed(2_592_000)
  await flush()
  await clock.advance(2_592_000 * S - 300 * S)
  transport.fail({ status: 429, retryAfterMs: 400 * S })
  await flush()
  await clock.advance(240 * S - 1)
  t.equal(logger.events('token_expiring').length, 0)
  await clock.advance(1)
  t.equal(logger.events('token_expiring').length, 1)
})

t.test('a failure early in a 30-day lifetime: the warning waits in timer-sized steps', async (t) => {
  const { clock, transport, logger, manager } = setup(t)
  manager.start()
  transport.succeed(2_592_000)
  await flush()
  await clock.advance(11 * S)
  void manager.forceRefresh()
  transport.fail({ status: 500 })
  await flush()
  // The retry goes out and never returns; only the expiry warning is left to fire.
  await clock.advance(2_592_000 * S - 11 * S - 60 * S - 1)
  t.equal(logger.events('token_expiring').length, 0)
  await clock.advance(1)
  t.equal(logger.events('token_expiring').length, 1)
})

t.test('no "expires soon" warning for a token that has already expired', async (t) => {
  const { clock, transport, logger, manager } = setup(t)
  manager.start()
  transport.succeed(2)
  await flush()
  await clock.advance(1 * S)
  t.equal(transport.open, 1, 'the refresh hangs past expiry')
  await clock.advance(2 * S)
  transport.fail({ status: 504 })
  await flush()
  await clock.advance(10)
  t.equal(logger.events('token_expiring').length, 0)
})

t.test('refreshNow fetches whatever the token\'s age, but not during a Retry-After wait', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  transport.succeed(3600)
  await flush()
  const now = manager.refreshNow()
  t.equal(transport.open, 1, 'a brand-new token is no reason to wait here')
  transport.succeed(3600)
  await now
  await clock.advance(11 * S)
  const forced = manager.forceRefresh()
  transport.fail({ status: 429, retryAfterMs: 30 * S })
  await forced
  await manager.refreshNow()
  t.equal(transport.open, 0, 'Retry-After holds')
  await clock.advance(30 * S)
  t.equal(transport.open, 1, 'the scheduled retry goes out')
  transport.succeed(3600)
  await flush()
  const again = manager.refreshNow()
  t.equal(transport.open, 1, 'and after a success refreshNow works again')
  transport.succeed(3600)
  await again
})

t.test('a lifetime beyond 30 days is served, refreshed as if it were 30 days, with a warning', async (t) => {
  const { clock, transport, logger, manager } = setup(t)
  manager.start()
  transport.succeed(365 * 86400)
  await flush()
  t.match(logger.events('token_lifetime_capped'), [{ level: 'warn', expires_in: 365 * 86400, scheduled_lifetime_seconds: 2_592_000 }])
  t.equal(manager.health().token?.expires_in, 365 * 86400, 'the real lifetime is reported')
  await clock.advance(2_592_000 * S - 300 * S)
  t.equal(transport.open, 1, 'refreshed a buffer before 30 days')
  transport.succeed(3600)
  await flush()
  t.equal(logger.events('token_lifetime_capped').length, 1, 'a normal lifetime is not warned about')
})

t.test('a capped Retry-After is waited for an hour and named in a warning', async (t) => {
  const { clock, transport, logger, manager } = setup(t)
  manager.start()
  transport.fail({ status: 429, retryAfterMs: 3_600_000, retryAfterCapped: 'Retry-After: 99999999999999999999', bodyExcerpt: '<html>slow down</html>' })
  await flush()
  t.match(logger.events('retry_after_capped'), [{ level: 'warn', retry_after: 'Retry-After: 99999999999999999999', retry_in_ms: 3_600_000 }])
  t.match(logger.events('token_refresh_failed'), [{ body_excerpt: '<html>slow down</html>' }])
  t.match(manager.health(), { status: 'unavailable', next_refresh_at: new Date(clock.now() + 3_600_000).toISOString() })
  await t.rejects(manager.token(), { code: 'TOKEN_UNAVAILABLE', retryAfterSeconds: 3600 })
})

t.test('the engine caps an uncapped Retry-After too, and a 503\'s Retry-After is a sane whole number', async (t) => {
  const { clock, transport, manager } = setup(t)
  manager.start()
  transport.fail({ status: 429, retryAfterMs: 1e23 })
  await flush()
  t.same(clock.pendingDelays(), [3_600_000])
  t.doesNotThrow(() => manager.health())
  await t.rejects(manager.token(), { code: 'TOKEN_UNAVAILABLE', retryAfterSeconds: 3600 })
  t.equal(new TokenUnavailableError('x', Number.NaN).retryAfterSeconds, 60)
  t.equal(new TokenUnavailableError('x', 1e30).retryAfterSeconds, 3600)
  t.equal(new TokenUnavailableError('x', 0.2).retryAfterSeconds, 1)
})

t.test('an answer that arrives after close is dropped, even from a transport that ignores the abort', async (t) => {
  const clock = new FakeClock()
  let answer: ((token: { accessToken: string, expiresInSeconds: number }) => void) | undefined
  const logger = new MemoryLogger()
  const manager = new TokenManager({
    transport: { fetchToken: () => new Promise((resolve) => { answer = resolve }) },
    logger,
    refreshBufferMs: 300 * S,
    clock,
    timers: clock
  })
  manager.start()
  await manager.close()
  answer!({ accessToken: 'late', expiresInSeconds: 3600 })
  await flush()
  t.equal(manager.current(), undefined)
  t.equal(logger.events('token_refreshed').length, 0)
  await t.rejects(manager.token(), { message: 'the sidecar is shutting down' })
})

t.test('asked before start: no token yet, ask again in a second', async (t) => {
  const { manager } = setup(t)
  await t.rejects(manager.token(), { code: 'TOKEN_UNAVAILABLE', message: 'no token has been obtained yet', retryAfterSeconds: 1 })
})

t.test('a token adopted from the shared store is logged and reported as such', async (t) => {
  const clock = new FakeClock()
  const seen: unknown[] = []
  const logger = new MemoryLogger()
  const transport = { fetchToken: async () => ({ accessToken: 'adopted-token', expiresInSeconds: 1800, source: 'store' as const }) }
  const manager = new TokenManager({ transport, logger, refreshBufferMs: 300 * S, clock, timers: clock, random: () => 0, observer: { attempt: (e) => seen.push(e) } })
  t.teardown(() => manager.close())
  manager.start()
  await flush()
  t.same(seen, [{ trigger: 'startup', result: 'success', durationMs: 0, lifetimeSeconds: 1800, source: 'store' }])
  t.match(logger.events('token_refreshed')[0], { source: 'store', msg: 'token adopted from the shared store', expires_in: 1800 })
  t.equal(manager.current()?.accessToken, 'adopted-token')
})

t.test('two rotations at once while a fetch is in flight: one fetch follows it, not two (single flight)', async (t) => {
  const { transport, manager } = engine(t)
  manager.start()
  const first = manager.refreshNow()
  const second = manager.refreshNow()
  transport.succeed(3600)
  await flush()
  t.equal(transport.open, 1, 'the second waits on the same follow-up fetch')
  transport.succeed(3600)
  await Promise.all([first, second])
  t.equal(transport.open, 0)
})
