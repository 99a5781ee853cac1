import t, { type Test } from 'tap'
import { StaticToken } from '../../src/engine/static-token.js'
import { FakeClock } from '../fixtures/fake-clock.js'
import { MemoryLogger } from '../fixtures/memory-logger.js'
import { expiryMs, jwtExp } from '../../src/jwt.js'

const S = 1000
const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
const jwt = (payload: unknown): string => `${b64({ alg: 'RS256' })}.${b64(payload)}.c2lnbmF0dXJl`

function setup (t: Test, token: string) {
  const clock = new FakeClock()
  const logger = new MemoryLogger()
  const source = new StaticToken({ token, logger, warnBeforeMs: 300 * S, clock, timers: clock })
  t.teardown(() => source.close())
  return { clock, logger, source }
}

t.test('reads exp from a JWT and nothing from anything else', async (t) => {
  t.equal(jwtExp(jwt({ exp: 1_800_000_000 })), 1_800_000_000)
  t.equal(jwtExp(jwt({ sub: 'x' })), undefined, 'no exp')
  t.equal(jwtExp(jwt({ exp: '1800000000' })), undefined, 'exp not a number')
  t.equal(jwtExp(jwt(null)), undefined, 'payload null')
  t.equal(jwtExp('opaque-token'), undefined)
  t.equal(jwtExp('a.b.c.d.e'), undefined, 'JWE has five parts')
  t.equal(jwtExp('a.!!!.c'), undefined, 'payload not JSON')
  t.equal(jwtExp(`${b64({})}.${Buffer.from('{"exp":1e400}').toString('base64url')}.x`), Infinity, 'JSON can spell infinity')
})

t.test('an exp no Date can hold is out of range, never a throw later', async (t) => {
  t.equal(expiryMs(1_800_000_000), 1_800_000_000_000)
  t.equal(expiryMs(1e15), undefined)
  t.equal(expiryMs(-1e15), undefined)
  t.equal(expiryMs(Infinity), undefined)
  t.throws(() => new StaticToken({ token: jwt({ exp: 1e15 }), logger: new MemoryLogger(), warnBeforeMs: 0 }), RangeError)
})

t.test('an opaque token is served as is, with no expiry', async (t) => {
  const { logger, source } = setup(t, 'opaque-static-token')
  source.start()
  t.same(await source.token(), { accessToken: 'opaque-static-token', expiresAt: null, expiresAtIso: null, deadline: null })
  t.same(await source.forceRefresh(), await source.token())
  t.same(source.health(), { status: 'ok', mode: 'static', token: { expires_at: null, expires_in: null }, last_refresh: null, next_refresh_at: null })
  t.match(logger.events('static_token_deprecated'), [{ level: 'warn', msg: /deprecated/ }])
  t.notOk(JSON.stringify(logger.entries).includes('opaque-static-token'))
})

t.test('a JWT is served until its exp, with a warning as it nears and 503 after', async (t) => {
  const clock = new FakeClock()
  const exp = Math.floor(clock.now() / 1000) + 3600
  const { clock: c, logger, source } = setup(t, jwt({ exp }))
  source.start()
  t.match(source.health(), { status: 'ok', token: { expires_in: 3600, expires_at: '2026-11-26T13:00:00.000Z' } })
  await c.advance(3300 * S - 1)
  t.equal(logger.events('token_expiring').length, 0)
  await c.advance(1)
  t.match(logger.events('token_expiring'), [{ level: 'warn', expires_in: 300 }])
  await c.advance(299 * S)
  t.ok(source.current(), 'still served with a second left')
  await c.advance(1 * S)
  t.equal(source.current(), undefined)
  await t.rejects(source.token(), { code: 'TOKEN_UNAVAILABLE', statusCode: 503, retryAfterSeconds: 300 })
  t.match(source.health(), { status: 'unavailable', token: null })
  t.match(logger.events('token_expired'), [{ level: 'error' }])
  t.same(c.pendingDelays(), [], 'nothing left to watch')
  t.equal(logger.events('token_expiring').length, 1, 'warned once')
})

t.test('a JWT already expired at start-up is never served', async (t) => {
  const clock = new FakeClock()
  const { logger, source } = setup(t, jwt({ exp: Math.floor(clock.now() / 1000) - 10 }))
  source.start()
  t.equal(source.current(), undefined)
  t.equal(source.health().status, 'unavailable')
  t.equal(logger.events('token_expired').length, 1)
})

t.test('a JWT expiring within the warning window warns at start-up', async (t) => {
  const clock = new FakeClock()
  const { logger, source } = setup(t, jwt({ exp: Math.floor(clock.now() / 1000) + 60 }))
  source.start()
  t.match(logger.events('token_expiring'), [{ expires_in: 60 }])
})

t.test('a far-off exp is watched in timer-sized steps', async (t) => {
  const clock = new FakeClock()
  const { clock: c, logger, source } = setup(t, jwt({ exp: Math.floor(clock.now() / 1000) + 40 * 86400 }))
  source.start()
  t.equal(c.pendingDelays()[0], 2 ** 31 - 1)
  await c.advance(40 * 86400 * S - 300 * S)
  t.equal(logger.events('token_expiring').length, 1)
})
