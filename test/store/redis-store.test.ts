import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig, type Env } from '../../src/config/load-config.js'
import { createSidecar } from '../../src/sidecar.js'
import { RedisTokenStore } from '../../src/store/redis-store.js'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'
import { FakeClock, until } from '../fixtures/fake-clock.js'
import { MemoryLogger } from '../fixtures/memory-logger.js'
import { freePort, RedisServer } from '../fixtures/redis-server.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'

// The store in-process, against a real redis-server: the wiring a spawned fleet exercises too.
const SECRET = 'store-inprocess-secret-0123456789abcdefgh'
registerSecret(SECRET)
const dir = mkdtempSync(join(tmpdir(), 'sidecar-store-'))

function storeFor (t: Test, url: string, logger = new MemoryLogger()): RedisTokenStore {
  const store = new RedisTokenStore({ url: new URL(url), prefix: 'test:v1:', logger })
  t.teardown(() => store.close())
  return store
}

async function sidecarWith (t: Test, env: Env, store: RedisTokenStore) {
  const captured = captureLogger()
  const sidecar = createSidecar(loadConfig({ TOOLBRIDGE_SIDECAR_SECRET: SECRET, ...env }), captured.logger, { tokenStore: store, clock: new FakeClock(Date.now()) })
  t.teardown(() => sidecar.app.close())
  sidecar.tokens.start()
  await until(() => captured.lines().some((l) => l.event === 'token_refreshed' || l.event === 'token_refresh_failed'))
  return { ...sidecar, lines: captured.lines }
}

t.test('private_key_jwt: entries are sealed under a key derived from the private key, and a rotated key reseals them', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const pair = () => generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const first = pair()
  const second = pair()
  const auth0 = await FakeAuth0.start({ assertionKey: first.publicKey })
  t.teardown(() => auth0.close())
  const keyFile = join(dir, 'key.pem')
  writeFileSync(keyFile, first.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  const env = {
    TOOLBRIDGE_AUTH0_CLIENT_ID: auth0.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'private_key_jwt',
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE: keyFile,
    TOOLBRIDGE_AUTH0_TOKEN_URL: auth0.tokenUrl
  }
  const a = await sidecarWith(t, env, storeFor(t, redis.url))
  const b = await sidecarWith(t, env, storeFor(t, redis.url))
  t.equal(auth0.tokenRequests(), 1, 'the second adopted the first one\'s token')
  t.equal(b.tokens.default.current()?.accessToken, a.tokens.default.current()?.accessToken)

  auth0.assertionKey = second.publicKey
  writeFileSync(keyFile, second.privateKey.export({ type: 'pkcs8', format: 'pem' }))
  await a.reload(env)
  t.equal(auth0.tokenRequests(), 2, 'the proving fetch after the rotation')
  // An instance still holding the old key cannot open what the rotated one wrote; one with the new key can.
  const c = await sidecarWith(t, env, storeFor(t, redis.url))
  t.equal(c.tokens.default.current()?.accessToken, a.tokens.default.current()?.accessToken)
  t.equal(auth0.tokenRequests(), 2, 'adopted under the new key')
  t.match(c.lines().find((l) => l.event === 'token_refreshed'), { source: 'store' })
  const health = (await c.app.inject({ url: '/healthz' })).json()
  t.match(health, { status: 'ok', token_store: { status: 'ok' } })
})

t.test('store health and failures: not yet connected, errors without a message, nothing after close', async (t) => {
  const logger = new MemoryLogger()
  const store = storeFor(t, `redis://:pass-word-123@127.0.0.1:${await freePort()}`, logger)
  registerSecret('pass-word-123')
  t.match(store.health(), { status: 'unavailable', reason: /^not connected \((connecting|reconnecting|wait)\)$/ }, 'before the first attempt settles')
  await until(() => logger.events('token_store_unavailable').length === 1)
  t.match(logger.events('token_store_unavailable')[0], { level: 'warn', store: /^redis:\/\/127\.0\.0\.1:\d+$/, reason: /ECONNREFUSED/ })
  store.failed({ code: 'ESOMETHING' })
  t.match(store.health(), { reason: 'ESOMETHING' })
  store.failed('no message at all: pass-word-123')
  t.match(store.health(), { reason: 'unknown error' })
  t.equal(logger.events('token_store_unavailable').length, 1, 'logged at most once a minute')
  const entry = store.entry({ tokenUrl: 'https://t.example/oauth/token', clientId: 'c', audience: 'a', organization: undefined, scope: undefined })
  await t.rejects(entry.read(), /not connected/, 'a call fails within the bound instead of queueing')
  await store.close()
  await t.rejects(entry.read(), /token store closed/, 'a call after close fails at once')
  store.failed(new Error('after close'))
  t.notMatch(store.health().reason, 'after close', 'ignored once closed')
  t.notMatch(JSON.stringify(logger.entries), 'pass-word-123')
})

t.test('the store\'s password never reaches a log line, even when the server echoes it', async (t) => {
  const logger = new MemoryLogger()
  const store = storeFor(t, 'redis://:pass%2Fword-456@127.0.0.1:1', logger)
  registerSecret('pass/word-456')
  store.failed(new Error('WRONGPASS invalid password pass/word-456'))
  t.match(store.health(), { reason: 'WRONGPASS invalid password [redacted]' })
})

const IDENTITY = { tokenUrl: 'https://t.example/oauth/token', clientId: 'c', audience: 'a', organization: undefined, scope: undefined }

t.test('health follows the connection: lost at once, back within a couple of seconds, with no call made', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const logger = new MemoryLogger()
  const store = storeFor(t, redis.url, logger)
  await store.entry(IDENTITY).read()
  t.same(store.health(), { status: 'ok' })
  await redis.kill()
  await until(() => store.health().status === 'unavailable', 2000)
  t.match(store.health(), { reason: /connection lost|ECONNREFUSED|connection ended/ })
  await t.rejects(store.entry(IDENTITY).read(), /not connected \(\w+\) after 500 ms/, 'once connected, a call waits for a reconnect only the call bound')
  await redis.restart()
  await until(() => store.health().status === 'ok', 2500)
  t.match(logger.events('token_store_recovered'), [{ level: 'info' }])
})

t.test('a paused store: a failed call marks it unavailable, and health clears within about a second of it answering again', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const logger = new MemoryLogger()
  const store = storeFor(t, redis.url, logger)
  const entry = store.entry(IDENTITY)
  await entry.read()
  redis.pause()
  await t.rejects(entry.read(), /timed out/i, 'a call on the frozen server fails within the bound')
  store.failed(new Error('Command timed out'))
  t.match(store.health(), { status: 'unavailable' })
  redis.resume()
  // Nobody calls the store: the probe notices it is back.
  await until(() => store.health().status === 'ok', 2500)
  t.match(logger.events('token_store_recovered'), [{ level: 'info' }])
  // A second failure within the minute is not logged, nor is its recovery; a successful call clears it at once.
  store.failed(new Error('Command timed out'))
  t.match(store.health(), { status: 'unavailable' })
  await entry.read()
  t.same(store.health(), { status: 'ok' })
  t.equal(logger.events('token_store_unavailable').length, 1)
  t.equal(logger.events('token_store_recovered').length, 1)
})

t.test('20 audiences on an unresponsive store: one shared wait for the connection, no listener warning, and close ends it at once', async (t) => {
  const { blackhole } = await import('../fixtures/blackhole.js')
  const port = await freePort()
  const hole = await blackhole('127.0.0.1', port)
  t.teardown(() => hole.close())
  const warnings: Error[] = []
  const onWarning = (w: Error): void => { warnings.push(w) }
  process.on('warning', onWarning)
  t.teardown(() => { process.off('warning', onWarning) })
  const store = storeFor(t, `redis://127.0.0.1:${port}`)
  const calls = Array.from({ length: 20 }, (_, i) => store.entry({ ...IDENTITY, audience: `https://api-${i}.example` }))
    .flatMap((entry) => [entry.read(), entry.lock('owner', 1000)])
  const settled = Promise.allSettled(calls)
  await new Promise((resolve) => setTimeout(resolve, 100))
  await store.close()
  const results = await settled
  t.ok(results.every((r) => r.status === 'rejected' && /token store closed/.test(String(r.reason))), 'every waiting call fails at once on close')
  t.same(warnings.map((w) => w.name), [], 'no MaxListenersExceededWarning')
})

t.test('a planted key of another type reads as size -1 (corrupt), not as a failed call', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const store = storeFor(t, redis.url)
  const entry = store.entry(IDENTITY)
  const { Redis } = await import('ioredis')
  const raw = new Redis(redis.url)
  t.teardown(() => raw.disconnect())
  await raw.hset(entry.key, 'f', 'v')
  t.match(await entry.read(), { entry: { head: '', size: -1, ttlMs: -1 } })
  t.same(store.health(), { status: 'ok' })
})
