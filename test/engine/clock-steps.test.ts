import t from 'tap'
import { CLOCK_POLICY } from '../../src/engine/schedule.js'
import { flush } from '../fixtures/fake-clock.js'
import { engine, engineWithToken, S } from '../fixtures/engine.js'
import { remainingMs } from '../../src/engine/clock.js'

const H = 3600 * S

t.test('wall clock stepped back an hour: no fetch, the token still expires on time and is refreshed on its timer', async (t) => {
  const { clock, transport, logger, manager } = await engineWithToken(t, 10)
  await clock.advance(2 * S)
  clock.stepWall(-H)
  t.ok(manager.current(), 'a step alone does not void a token monotonic time still trusts')
  t.equal(transport.open, 0, 'a backward step needs no fetch: the monotonic deadline and timer still hold')
  t.match(logger.events('clock_jump'), [{ level: 'warn', step_ms: -H, direction: 'backward', action: 'none' }])
  t.equal(manager.health().token?.expires_in, 8)
  t.equal(Date.parse(manager.health().token!.expires_at!), clock.now() + 8 * S, 'the wall expiry follows the monotonic deadline again')
  await clock.advance(3 * S)
  t.equal(transport.open, 1, 'the timer refresh goes out when due (half the lifetime)')
  await clock.advance(4 * S)
  t.ok(manager.current(), '9 s after issue: 1 s left')
  await clock.advance(1)
  t.equal(manager.current(), undefined, 'never served past its lifetime, though wall time said an hour was left')
  await clock.advance(14 * S)
  t.equal(manager.current(), undefined, '24 s after issue: still not served')
  const token = transport.succeed(60)
  await flush()
  t.equal(manager.current()?.accessToken, token, 'the new token, its lifetime counted from when it was asked for')
  t.equal(manager.health().token?.expires_in, 41)
  t.match(manager.health().last_refresh, { trigger: 'timer', result: 'success' })
})

t.test('a small forward step: no fetch; the token is held to what the wall clock says and its refresh moves earlier', async (t) => {
  const { clock, transport, logger, manager } = await engineWithToken(t, 3600)
  await clock.advance(60 * S)
  clock.stepWall(10 * 60 * S)
  t.ok(manager.current())
  t.equal(transport.open, 0)
  t.match(logger.events('clock_jump'), [{ direction: 'forward', action: 'reschedule' }])
  t.equal(manager.health().token?.expires_in, 2940, 'wall and monotonic expiry agree again')
  t.same(clock.pendingDelays(), [2640 * S], 'the refresh is 10 minutes earlier: a suspended timer is late by that much')
})

t.test('forward steps that make a refresh due fetch at once, then spaced as forced fetches are', async (t) => {
  const { clock, transport, logger, manager } = await engineWithToken(t, 3600)
  await clock.advance(3000 * S)
  clock.stepWall(350 * S)
  await clock.advance(CLOCK_POLICY.checkIntervalMs)
  t.equal(transport.open, 1, 'the refresh fell due: fetched')
  transport.succeed(3600)
  await flush()
  t.match(manager.health().last_refresh, { trigger: 'clock_jump' })
  clock.stepWall(3400 * S)
  await clock.advance(CLOCK_POLICY.checkIntervalMs)
  t.equal(transport.open, 0, 'due again, but within the forced-refresh spacing (20 s after the first)')
  t.match(logger.events('clock_jump').at(-1), { action: 'refresh_spaced' })
  clock.stepWall(10 * S)
  await clock.advance(CLOCK_POLICY.checkIntervalMs)
  t.match(logger.events('clock_jump').at(-1), { action: 'refresh_spaced' }, 'the spaced fetch stays where it is')
  await clock.advance(17 * S)
  t.equal(transport.open, 0)
  await clock.advance(S)
  t.equal(transport.open, 1, 'the spaced fetch goes out 20 s after the first')
  transport.succeed(3600)
  await flush()
  t.ok(manager.current())
})

t.test('clock flapping: 30 alternating 6-s steps in 60 s on 5 audiences cost no fetch and one warning per audience', async (t) => {
  const audiences = await Promise.all(Array.from({ length: 5 }, async () => engineWithToken(t, 86400)))
  for (const a of audiences) await a.clock.advance(3600 * S)
  for (let i = 0; i < 30; i++) {
    for (const a of audiences) {
      a.clock.stepWall(i % 2 === 0 ? 6 * S : -6 * S)
      await a.clock.advance(2 * S)
      a.manager.current()
    }
  }
  const fetches = audiences.reduce((n, a) => n + a.transport.open, 0)
  t.ok(fetches <= 2, `${fetches} fetches`)
  const warnings = audiences.flatMap((a) => a.logger.events('clock_jump').filter((e) => e.level === 'warn'))
  t.equal(warnings.length, 5, 'one clock_jump warning per audience in the minute, the other steps at debug')
  t.equal(audiences[0]!.logger.events('clock_jump').length, 30, 'every step is still logged')
  t.ok(audiences.every((a) => a.manager.current() !== undefined), 'every audience still serves')
  // A minute on, the next step warns again and says how many were quiet.
  const [a] = audiences
  await a!.clock.advance(60 * S)
  a!.clock.stepWall(6 * S)
  a!.manager.current()
  t.match(a!.logger.events('clock_jump').at(-1), { level: 'warn', steps_since_last_warning: 29 })
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
  await clock.advance(60 * S)
  clock.stepWall(3400 * S)
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
  t.match(backoff.logger.events('clock_jump'), [{ direction: 'backward', action: 'none' }])
  backoff.clock.stepWall(2 * H)
  backoff.manager.current()
  t.equal(backoff.transport.open, 0, 'nor on a forward step')
  t.match(backoff.logger.events('clock_jump').at(-1), { direction: 'forward', action: 'wait_for_scheduled_retry' })
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
