import t from 'tap'
import { isoTime, remainingMs } from '../../src/engine/clock.js'
import { FakeClock } from '../fixtures/fake-clock.js'

t.test('remainingMs: the smaller of what the two clocks say; wall time alone without a deadline; null without an expiry', async (t) => {
  const clock = new FakeClock(1_000_000)
  const token = { accessToken: 'x', expiresAt: 1_060_000, expiresAtIso: isoTime(1_060_000), deadline: clock.monotonic() + 30_000 }
  t.equal(remainingMs(token, clock), 30_000, 'the monotonic deadline is nearer')
  t.equal(remainingMs({ ...token, deadline: null }, clock), 60_000, 'a JWT exp with no deadline: wall time')
  t.equal(remainingMs({ ...token, expiresAt: null, expiresAtIso: null, deadline: null }, clock), null)
})

t.test('isoTime: null where no Date can hold the time', async (t) => {
  t.equal(isoTime(0), '1970-01-01T00:00:00.000Z')
  t.equal(isoTime(8.64e15 + 1), null)
  t.equal(isoTime(Number.NaN), null)
})
