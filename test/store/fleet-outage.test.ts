import t from 'tap'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'
import { fleet, healthOf, sleep, tokenOf } from '../fixtures/fleet.js'
import { RedisServer } from '../fixtures/redis-server.js'

// Real sidecar processes, a real redis-server and one Auth0 stand-in on loopback.

t.test('the store dies mid-run: every sidecar keeps serving and refreshing directly, degraded; back, it is used again', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  // 16-s tokens refreshed 3 s before expiry: a round every 11.7 to 13 s.
  const auth0 = await FakeAuth0.start({ expiresIn: 16 })
  t.teardown(() => auth0.close())
  const members = await fleet(t, 3, auth0, redis.url, { TOOLBRIDGE_REFRESH_BUFFER_SECONDS: '3' })
  t.equal(auth0.tokenRequests(), 1)

  await redis.kill()
  await Promise.all(members.map((m) => m.sidecar.waitFor((l) => l.event === 'token_store_unavailable')))
  for (const member of members) {
    t.ok(await tokenOf(member), 'still serving')
    t.match(await healthOf(member), { status: 'degraded', token_store: { status: 'unavailable', reason: String } })
  }
  // Their timers fire: each refreshes on its own, straight from the endpoint.
  await sleep(14_000)
  t.equal(auth0.tokenRequests(), 4, 'each of the three fetched directly')
  for (const member of members) t.ok(await tokenOf(member))
  const warned = members.map((m) => m.sidecar.lines.filter((l) => l.event === 'token_store_unavailable').length)
  t.ok(warned.every((n) => n === 1), `token_store_unavailable logged once a minute at most (${warned.join(', ')})`)

  await redis.restart()
  await Promise.all(members.map((m) => m.sidecar.waitFor((l) => l.event === 'token_store_recovered', 10_000)))
  for (const member of members) t.match(await healthOf(member), { status: 'ok', token_store: { status: 'ok' } })
  // The next round goes through the store again: one fetch for the fleet.
  const before = auth0.tokenRequests()
  await sleep(14_000)
  t.equal(auth0.tokenRequests() - before, 1, 'one request for the fleet once the store is back')
  t.same(new Set(await Promise.all(members.map(tokenOf))).size, 1)
})
