import t from 'tap'
import { DEFAULT_REFRESH_BUDGET_PER_HOUR } from '../../src/engine/schedule.js'
import { TokenUnavailableError } from '../../src/engine/errors.js'
import { flush } from '../fixtures/fake-clock.js'
import { engine, engineWithToken, S } from '../fixtures/engine.js'

t.test('a 5-s token (a refresh every 2.5 s): warned once, and the refresh rate reported after every success', async (t) => {
  const { clock, transport, logger, rates } = await engineWithToken(t, 5)
  t.equal(DEFAULT_REFRESH_BUDGET_PER_HOUR, 60)
  t.match(logger.events('refresh_budget_exceeded'), [{ level: 'warn', expires_in: 5, refreshes_per_hour: 1440, budget_per_hour: 60 }])
  t.same(rates, [1440])
  for (let i = 0; i < 3; i++) {
    await clock.advance(2500)
    transport.succeed(5)
    await flush()
  }
  t.equal(logger.events('refresh_budget_exceeded').length, 1, 'once')
  t.same(rates, [1440, 1440, 1440, 1440])
})

t.test('within the budget: no warning; the budget is configurable', async (t) => {
  const day = await engineWithToken(t, 86400)
  t.same(day.logger.events('refresh_budget_exceeded'), [])
  t.equal(Math.round(day.rates[0]! * 1000), Math.round(3_600_000 / 86100), 'a day-long token: under 0.05 an hour')
  // 10-minute tokens, 5-minute buffer: 12 an hour.
  const tight = await engineWithToken(t, 600, { refreshBudgetPerHour: 10 })
  t.match(tight.logger.events('refresh_budget_exceeded'), [{ refreshes_per_hour: 12, budget_per_hour: 10 }])
  const loose = await engineWithToken(t, 600, { refreshBudgetPerHour: 12 })
  t.same(loose.logger.events('refresh_budget_exceeded'), [], 'exactly at the budget is within it')
})

t.test('an adopted token with little left is no issued lifetime: no warning', async (t) => {
  const { manager, transport, logger, rates } = engine(t)
  manager.start()
  transport.calls.shift()!.resolve({ accessToken: 'adopted', expiresInSeconds: 10, source: 'store' })
  await flush()
  t.ok(manager.current())
  t.same(logger.events('refresh_budget_exceeded'), [])
  t.same(rates, [720], 'the rate is still reported')
})

t.test('a request waits for a fetch at most the wait limit, then gets 503', async (t) => {
  const { clock, manager, transport } = engine(t, { waitLimitMs: 22 * S })
  manager.start()
  const waiting = manager.token()
  let settled = false
  waiting.catch(() => {}).finally(() => { settled = true })
  await clock.advance(22 * S - 1)
  t.equal(settled, false, 'still waiting just before the limit')
  await clock.advance(1)
  await t.rejects(waiting, TokenUnavailableError)
  t.equal(transport.open, 1, 'the fetch itself goes on')
  // Within the limit, the token is handed over.
  const next = manager.token()
  transport.succeed(3600)
  t.ok((await next).accessToken)
  t.same(clock.pendingDelays().length, 1, 'the limit\'s timer is cleared: only the refresh timer is left')
})

t.test('after stop, nothing is fetched: a forced refresh answers that the sidecar is shutting down', async (t) => {
  const { manager, transport } = engine(t)
  manager.stop()
  await t.rejects(manager.forceRefresh(), { name: 'TokenUnavailableError', message: /shutting down/ })
  t.equal(transport.open, 0)
})
