import { createHash } from 'node:crypto'
import t from 'tap'
import { FORCED_REFRESH_POLICY, forcedSpacingMs } from '../../src/engine/schedule.js'
import { flush } from '../fixtures/fake-clock.js'
import { engine, engineWithToken, S } from '../fixtures/engine.js'

const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex')

t.test('the spacing doubles from 10 s to a 10-minute cap', async (t) => {
  t.same([0, 1, 2, 3, 4, 5, 6, 7, 100].map(forcedSpacingMs), [10, 20, 40, 80, 160, 320, 600, 600, 600].map((s) => s * S))
  t.equal(FORCED_REFRESH_POLICY.minSpacingMs, 10 * S)
})

t.test('a client calling POST /token/refresh every 100 ms gets 10 s, 20 s, 40 s … between fetches', async (t) => {
  const { clock, transport, manager, refused } = await engineWithToken(t, 86400)
  const fetchedAt: number[] = []
  const start = clock.monotonic()
  // An hour of hammering.
  for (let elapsed = 0; elapsed < 3600 * S; elapsed += 100) {
    const forced = manager.forceRefresh()
    await flush()
    if (transport.open > 0) {
      fetchedAt.push((clock.monotonic() - start) / S)
      transport.succeed(86400)
    }
    await forced
    await clock.advance(100)
  }
  t.same(fetchedAt, [10, 30, 70, 150, 310, 630, 1230, 1830, 2430, 3030], 'gaps 10, 20, 40, 80, 160, 320, then 600 s')
  t.equal(refused.filter((r) => r === 'too_soon').length, 36000 - fetchedAt.length, 'every other call refused as too soon')
})

t.test('between allowed fetches the current token is served', async (t) => {
  const { clock, transport, manager } = await engineWithToken(t, 86400)
  await clock.advance(10 * S)
  const forced = manager.forceRefresh()
  const second = transport.succeed(86400)
  t.equal((await forced).accessToken, second)
  await clock.advance(19 * S)
  t.equal((await manager.forceRefresh()).accessToken, second, '19 s later: too soon for the second forced fetch')
  t.equal(transport.open, 0)
  await clock.advance(1 * S)
  void manager.forceRefresh()
  t.equal(transport.open, 1, '20 s later it fetches')
})

t.test('the spacing returns to 10 s after a timer refresh succeeds', async (t) => {
  const { clock, transport, manager } = await engineWithToken(t, 3600)
  for (let i = 0; i < 4; i++) {
    await clock.advance(forcedSpacingMs(i))
    void manager.forceRefresh()
    t.equal(transport.open, 1, `forced fetch ${i + 1}`)
    transport.succeed(3600)
    await flush()
  }
  await clock.advance(forcedSpacingMs(4) - 1)
  void manager.forceRefresh()
  t.equal(transport.open, 0, 'fifth forced fetch waits 160 s')
  // The timer refresh of the last token (3300 s after it) resets the streak.
  await clock.advance(clock.pendingDelays()[0]!)
  t.equal(transport.open, 1, 'timer refresh')
  transport.succeed(3600)
  await flush()
  await clock.advance(10 * S)
  void manager.forceRefresh()
  t.equal(transport.open, 1, 'back to 10 s')
  transport.succeed(3600)
  await flush()
})

t.test('a failed forced fetch still counts toward the spacing, and its backoff refuses more', async (t) => {
  const { clock, transport, manager, refused, token: first } = await engineWithToken(t, 3600)
  await clock.advance(10 * S)
  const forced = manager.forceRefresh()
  transport.fail({ status: 500 })
  t.equal((await forced).accessToken, first, 'the held token is served')
  t.equal((await manager.forceRefresh()).accessToken, first)
  t.same(refused, ['backoff'])
  await clock.advance(clock.pendingDelays()[0]!)
  transport.succeed(3600)
  await flush()
  await clock.advance(19 * S)
  await manager.forceRefresh()
  t.equal(transport.open, 0, 'the retry was no timer refresh: the next forced fetch still waits 20 s')
  t.same(refused, ['backoff', 'too_soon'])
})

t.test('rejected_token_sha256 of an older token: answered with the current one, no fetch', async (t) => {
  const { clock, transport, manager, refused, token: old } = await engineWithToken(t, 3600)
  await clock.advance(3300 * S)
  const current = transport.succeed(3600)
  await flush()
  await clock.advance(600 * S)
  t.equal((await manager.forceRefresh(sha256(old))).accessToken, current)
  t.equal((await manager.forceRefresh('0'.repeat(64))).accessToken, current)
  t.equal(transport.open, 0, 'no fetch')
  t.same(refused, ['not_current', 'not_current'])
  const forced = manager.forceRefresh(sha256(current).toUpperCase())
  t.equal(transport.open, 1, 'the current token\'s hash (any case): a fetch, spacing allowing')
  const fresh = transport.succeed(3600)
  t.equal((await forced).accessToken, fresh)
  await clock.advance(5 * S)
  t.equal((await manager.forceRefresh(sha256(fresh))).accessToken, fresh, 'too soon after the last fetch')
  t.same(refused, ['not_current', 'not_current', 'too_soon'])
})

t.test('with no token held, a forced refresh joins or starts the fetch it needs', async (t) => {
  const { clock, transport, manager } = engine(t)
  manager.start()
  const joined = manager.forceRefresh('a'.repeat(64))
  t.equal(transport.open, 1, 'the start-up fetch, joined')
  transport.fail({ status: 500 })
  await t.rejects(joined, { code: 'TOKEN_UNAVAILABLE' })
  await t.rejects(manager.forceRefresh(), { code: 'TOKEN_UNAVAILABLE' }, 'during the backoff: 503, no fetch')
  t.equal(transport.open, 0)
  await clock.advance(clock.pendingDelays()[0]!)
  const token = transport.succeed(3600)
  await flush()
  t.equal((await manager.token()).accessToken, token)
})

t.test('a rotated secret is proven by a fetch that starts after the one in flight', async (t) => {
  const { clock, transport, manager } = await engineWithToken(t, 3600)
  await clock.advance(3300 * S)
  t.equal(transport.open, 1, 'a timer refresh is in flight, carrying the old secret')
  const rotated = manager.refreshNow()
  await flush()
  t.equal(transport.open, 1, 'one at a time')
  transport.succeed(3600)
  await flush()
  t.equal(transport.open, 1, 'then another fetch, with the new secret')
  transport.succeed(3600)
  await rotated
  t.match(manager.health().last_refresh, { trigger: 'forced', result: 'success' })
})

t.test('stop answers waiters at once and keeps serving the held token', async (t) => {
  const { transport, manager } = engine(t)
  manager.start()
  const waiting = manager.token()
  manager.stop()
  t.ok(transport.calls[0]!.signal.aborted, 'the in-flight request is aborted')
  await t.rejects(waiting, { code: 'TOKEN_UNAVAILABLE', message: 'the sidecar is shutting down' })

  const other = await engineWithToken(t, 3600)
  other.manager.stop()
  t.equal((await other.manager.token()).accessToken, other.token)
  t.same(other.clock.pendingDelays(), [], 'no timers left')
})
