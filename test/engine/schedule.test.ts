import t from 'tap'
import { BACKOFF_POLICY, backoffDelayMs, refreshDelayMs, REFRESH_POLICY } from '../../src/engine/schedule.js'

const S = 1000
const DAY = 86_400 * S

t.test('refreshes a buffer before expiry, jittered earlier by at most 60 s', async (t) => {
  t.equal(refreshDelayMs(DAY, 300 * S, () => 0), DAY - 300 * S)
  t.equal(refreshDelayMs(DAY, 300 * S, () => 0.999999), Math.floor(DAY - 300 * S - 0.999999 * REFRESH_POLICY.maxJitterMs))
  for (let i = 0; i < 200; i++) {
    const delay = refreshDelayMs(DAY, 300 * S, Math.random)
    t.ok(delay <= DAY - 300 * S && delay >= DAY - 360 * S, `${delay} within jitter bounds`)
  }
})

t.test('never before half the lifetime, however short the token', async (t) => {
  t.equal(refreshDelayMs(60 * S, 300 * S, () => 1), 30 * S, '60 s token with a 300 s buffer: at 30 s')
  t.equal(refreshDelayMs(2 * S, 300 * S, () => 0.5), 1 * S, '2 s token')
  t.equal(refreshDelayMs(120 * S, 0, () => 0), 120 * S, 'no buffer: at expiry')
  for (let i = 0; i < 200; i++) {
    const lifetime = Math.ceil(Math.random() * 30 * DAY)
    const delay = refreshDelayMs(lifetime, 300 * S, Math.random)
    t.ok(delay >= lifetime / 2 - 1 && delay <= lifetime, `lifetime ${lifetime}: ${delay}`)
  }
})

t.test('a 30-day token refreshes a buffer before its expiry', async (t) => {
  const thirtyDays = 30 * DAY
  t.equal(refreshDelayMs(thirtyDays, 300 * S, () => 0), thirtyDays - 300 * S)
  t.ok(thirtyDays - 300 * S > 2 ** 31 - 1, 'longer than one Node timer can wait: the engine chains timers')
})

t.test('backoff grows from about 1 s to a 60 s cap with full jitter', async (t) => {
  t.equal(backoffDelayMs(1, () => 0.999), 999)
  t.equal(backoffDelayMs(2, () => 0.999), 1998)
  t.equal(backoffDelayMs(3, () => 0.5), 2000)
  t.equal(backoffDelayMs(10, () => 0.999), Math.floor(0.999 * BACKOFF_POLICY.maxTimeoutMs), 'capped')
  t.equal(backoffDelayMs(50, () => 1), BACKOFF_POLICY.maxTimeoutMs, 'no overflow for large attempts')
  t.equal(backoffDelayMs(1, () => 0), BACKOFF_POLICY.floorMs, 'full jitter drawing 0 still waits the floor')
})

t.test('Retry-After is a floor, never shortened by jitter', async (t) => {
  t.equal(backoffDelayMs(1, () => 0.5, 30_000), 30_000)
  t.equal(backoffDelayMs(1, () => 0.5, 3_600_000), 3_600_000, 'an hour-long quota reset is honoured')
  t.equal(backoffDelayMs(8, () => 0.9, 10), Math.floor(0.9 * 60_000), 'a short Retry-After does not speed retries up')
})

t.test('configuration errors wait the longest step', async (t) => {
  t.equal(backoffDelayMs(1, () => 0, 0, true), BACKOFF_POLICY.maxTimeoutMs)
  t.equal(backoffDelayMs(1, () => 0, 120_000, true), 120_000)
})

t.test('unknown failures are wrapped as network errors', async (t) => {
  const { asTokenRequestError, TokenRequestError } = await import('../../src/engine/errors.js')
  const original = new TokenRequestError('x', { kind: 'http_error', code: 'HTTP_500' })
  t.equal(asTokenRequestError(original), original)
  const wrapped = asTokenRequestError(new Error('boom'))
  t.match(wrapped, { kind: 'network_error', code: 'UNEXPECTED', message: 'token request failed unexpectedly' })
  t.match(wrapped.cause, { message: 'boom' })
})
