import t from 'tap'
import { CLOCK_POLICY } from '../../src/engine/schedule.js'
import { remainingMs } from '../../src/engine/types.js'
import { flush } from '../fixtures/fake-clock.js'
import { engine, engineWithToken, S } from '../fixtures/engine.js'

const H = 3600 * S

t.test('wall clock stepped back an hour: the token still expires on time and is refreshed', async (t) => {
  const { clock, transport, logger, manager } = await engineWithToken(t, 10)
  await clock.advance(2 * S)
  clock.stepWall(-H)
  t.ok(manager.current(), 'a step alone does not void a token monotonic time still trusts')
  t.equal(transport.open, 1, 'the step is noticed on the next look at the token, and a new token fetched')
  const [jump] = logger.events('clock_jump')
  t.match(jump, { level: 'warn', step_ms: -H, direction: 'backward', action: 'refresh' })
  t.equal(manager.current() !== undefined, true, 'the old token is served while the fetch runs')
  await clock.advance(7 * S)
  t.ok(manager.current(), '9 s after issue: 1 s left')
  await clock.advance(1)
  t.equal(manager.current(), undefined, 'never served past its lifetime, though wall time says 59 minutes are left')
  await clock.advance(14 * S)
  t.equal(manager.current(), undefined, '24 s after issue: still not served')
  const token = transport.succeed(60)
  await flush()
  t.equal(manager.current()?.accessToken, token, 'the new token, its lifetime counted from when it was asked for')
  t.equal(manager.health().token?.expires_in, 38)
  t.match(manager.health().last_refresh, { trigger: 'clock_jump', result: 'success' })
})

t.test('wall clock stepped forward (resume from suspend): the stale token is dropped and replaced at once', async (t) => {
  const { clock, transport, logger, manager, token: first } = await engineWithToken(t, 86400)
  await clock.advance(60 * S)
  t.same(clock.pendingDelays(), [86040 * S], 'the refresh timer runs on monotonic time')
  clock.stepWall(2 * 86400 * S)
  t.equal(manager.current(), undefined, 'wall time says it expired a day ago: not served')
  t.equal(transport.open, 1, 'and a new token is on its way')
  t.match(logger.events('clock_jump'), [{ step_ms: 2 * 86400 * S, direction: 'forward', action: 'refresh' }])
  const waiting = manager.token()
  const second = transport.succeed(86400)
  t.equal((await waiting).accessToken, second, 'a waiting request gets the new token')
  t.not(second, first)
  t.same(clock.pendingDelays(), [86100 * S], 'the timer is re-armed from the new token')
  t.equal(manager.health().token?.expires_in, 86400, 'expires_in agrees with both clocks')
})

t.test('a step is noticed within a check interval even when nobody asks for a token', async (t) => {
  const { clock, transport, logger, manager } = engine(t)
  manager.start()
  t.equal(clock.intervals, 1, 'one clock check running')
  transport.succeed(3600)
  await flush()
  clock.stepWall(10 * 60 * S)
  await clock.advance(CLOCK_POLICY.checkIntervalMs)
  t.equal(logger.events('clock_jump').length, 1)
  t.equal(transport.open, 1, 'refresh started by the periodic check')
  transport.succeed(3600)
  await flush()
  await manager.close()
  t.equal(clock.intervals, 0, 'the check stops on close')
})

t.test('small differences between the clocks are no step', async (t) => {
  const { clock, transport, logger, manager } = await engineWithToken(t, 3600)
  clock.stepWall(CLOCK_POLICY.jumpThresholdMs)
  await clock.advance(CLOCK_POLICY.checkIntervalMs)
  t.ok(manager.current())
  clock.stepWall(-CLOCK_POLICY.jumpThresholdMs)
  await clock.advance(CLOCK_POLICY.checkIntervalMs)
  t.equal(logger.events('clock_jump').length, 0)
  t.equal(transport.open, 0)
})

t.test('slow drift never adds up to a step: each check compares with the one before', async (t) => {
  const { clock, transport, logger } = await engineWithToken(t, 86400)
  for (let i = 0; i < 20; i++) {
    clock.stepWall(1 * S)
    await clock.advance(CLOCK_POLICY.checkIntervalMs)
  }
  t.equal(logger.events('clock_jump').length, 0, '20 s of drift in 1 s steps')
  t.equal(transport.open, 0)
})

t.test('no fetch on a step while Auth0 asked us to wait, or a backoff runs', async (t) => {
  const retryAfter = engine(t)
  retryAfter.manager.start()
  retryAfter.transport.fail({ status: 429, retryAfterMs: 600 * S })
  await flush()
  retryAfter.clock.stepWall(H)
  await retryAfter.clock.advance(CLOCK_POLICY.checkIntervalMs)
  t.match(retryAfter.logger.events('clock_jump'), [{ action: 'wait_for_scheduled_retry' }])
  t.equal(retryAfter.transport.open, 0, 'Retry-After holds')
  await retryAfter.clock.advance(600 * S)
  t.equal(retryAfter.transport.open, 1, 'the retry goes out when it was due, on monotonic time')

  const backoff = await engineWithToken(t, 3600)
  await backoff.clock.advance(3300 * S)
  backoff.transport.fail({ status: 500 })
  await flush()
  backoff.clock.stepWall(-H)
  t.ok(backoff.manager.current(), 'the step is seen')
  t.equal(backoff.transport.open, 0, 'no fetch during the backoff')
  t.match(backoff.logger.events('clock_jump'), [{ direction: 'backward', action: 'wait_for_scheduled_retry' }])
})

t.test('timers, backoff and Retry-After run on monotonic time whatever the wall clock does', async (t) => {
  const { clock, transport, manager } = engine(t)
  manager.start()
  transport.fail({ status: 429, retryAfterMs: 42 * S })
  await flush()
  clock.stepWall(-3 * S)
  await clock.advance(42 * S - 1)
  clock.stepWall(4 * S)
  await clock.advance(0)
  t.equal(transport.open, 0, 'wall steps below the threshold do not shorten the wait')
  await clock.advance(1)
  t.equal(transport.open, 1)
})

t.test('health and next_refresh_at read wall time at the moment of asking', async (t) => {
  const { clock, manager } = await engineWithToken(t, 3600)
  const before = Date.parse(manager.health().next_refresh_at!)
  t.equal(before - clock.now(), 3300 * S)
  t.equal(remainingMs(manager.current()!, clock), 3600 * S)
})

t.test('a closing engine ignores steps', async (t) => {
  const { clock, transport, logger, manager } = await engineWithToken(t, 3600)
  manager.stop()
  clock.stepWall(H)
  t.equal(manager.current(), undefined)
  t.equal(logger.events('clock_jump').length, 0)
  t.equal(transport.open, 0)
})

t.test('remaining lifetime: the smaller of what the two clocks say, null when unknown', async (t) => {
  const { clock } = engine(t)
  const base = { accessToken: 'x', expiresAtIso: null }
  t.equal(remainingMs({ ...base, expiresAt: null, deadline: null }, clock), null)
  t.equal(remainingMs({ ...base, expiresAt: clock.now() + 5000, deadline: null }, clock), 5000, 'a static JWT: wall time only')
  t.equal(remainingMs({ ...base, expiresAt: clock.now() + 5000, deadline: clock.monotonic() + 3000 }, clock), 3000)
  t.equal(remainingMs({ ...base, expiresAt: clock.now() + 2000, deadline: clock.monotonic() + 3000 }, clock), 2000)
})

t.test('a step while a fetch is in flight joins it: still one request', async (t) => {
  const { clock, transport, logger, manager } = await engineWithToken(t, 3600)
  await clock.advance(3300 * S)
  t.equal(transport.open, 1, 'the timer refresh is in flight')
  clock.stepWall(H)
  await clock.advance(CLOCK_POLICY.checkIntervalMs)
  t.equal(logger.events('clock_jump').length, 1)
  t.equal(transport.open, 1, 'no second request')
  const token = transport.succeed(3600)
  await flush()
  t.equal(manager.current()?.accessToken, token)
  t.equal(manager.health().token?.expires_in, 3599, 'its wall expiry is read after the step')
})
