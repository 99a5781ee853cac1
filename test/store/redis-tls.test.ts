import { join } from 'node:path'
import t from 'tap'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'
import { fleet, healthOf, tokenOf } from '../fixtures/fleet.js'
import { RedisServer } from '../fixtures/redis-server.js'
import { registerSecret } from '../fixtures/suite-log.js'
import { FIXTURES } from '../fixtures/suite-paths.js'

const CA = join(FIXTURES, 'tls/ca.pem')

// In npm test's tier, though it spawns sidecars: the one path from the CLI through
// a real Redis client (serve.ts opens the store, TLS, the default clocks) that the
// in-process fleet tests cannot take.
t.test('a store reachable only over TLS (rediss://, a private CA through NODE_EXTRA_CA_CERTS), with a password', async (t) => {
  const password = 'store-password-0123456789'
  registerSecret(password)
  const redis = await RedisServer.start({ tls: true, password })
  t.teardown(() => redis.stop())
  t.match(redis.url, /^rediss:\/\//)
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  const members = await fleet(t, 2, auth0, redis.url, { NODE_EXTRA_CA_CERTS: CA })
  t.equal(auth0.tokenRequests(), 1, 'shared over TLS')
  t.match(members[0]!.sidecar.lines.find((l) => l.event === 'token_store_ready'), { store: `rediss://127.0.0.1:${redis.port}` })

  // Without the CA the store is unavailable (and said so), but tokens are still served.
  const [untrusting] = await fleet(t, 1, auth0, redis.url)
  t.ok(await tokenOf(untrusting!))
  const health = await healthOf(untrusting!)
  t.match(health, { status: 'degraded', token_store: { status: 'unavailable' } })
  const logged = JSON.stringify(untrusting!.sidecar.lines)
  t.match(logged, /token_store_unavailable/)
  t.notMatch(logged, password, 'the password is never logged')
})
