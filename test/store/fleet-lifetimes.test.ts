import t from 'tap'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'
import { fleet, healthOf, sleep, tokenOf } from '../fixtures/fleet.js'
import { RedisServer } from '../fixtures/redis-server.js'

// Real sidecar processes, a real redis-server and one Auth0 stand-in on loopback.

t.test('five sidecars, one store: 1 upstream request at start-up and 1 per lifetime; all serve the same token', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  // 20-s tokens refreshed 4 s before expiry (less up to 10 % jitter): a round every 14.4 to 16 s.
  const auth0 = await FakeAuth0.start({ expiresIn: 20 })
  t.teardown(() => auth0.close())
  const env = { TOOLBRIDGE_REFRESH_BUFFER_SECONDS: '4' }
  const members = await fleet(t, 5, auth0, redis.url, env)
  t.equal(auth0.tokenRequests(), 1, 'one upstream request for the whole fleet at start-up')
  const first = await Promise.all(members.map(tokenOf))
  t.same(new Set(first).size, 1, 'all five serve the same token')
  const adopted = members.flatMap((m) => m.sidecar.lines.filter((l) => l.event === 'token_refreshed' && l.source === 'store'))
  t.equal(adopted.length, 4, 'four adopted it from the store')

  // Two refresh rounds: each sidecar's own jittered timer fires, only one fetches.
  await sleep(36_000)
  t.equal(auth0.tokenRequests(), 3, `one upstream request per lifetime (${auth0.tokenRequests()} after two lifetimes)`)
  const later = await Promise.all(members.map(tokenOf))
  t.same(new Set(later).size, 1, 'still one token across the fleet')
  t.not(later[0], first[0])

  t.match(await healthOf(members[0]!), { status: 'ok', token_store: { status: 'ok' } })
})
