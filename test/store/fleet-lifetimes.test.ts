import t from 'tap'
import { D, H, memoryFleet, S } from '../fixtures/memory-fleet.js'

// In process: five real token engines, an in-memory store and a modelled token endpoint on one
// simulated time; ten lifetimes take no wall time. The real-Redis, real-process version of the
// fleet lives in test/store/fleet-entries.e2e.ts and the store contract in store-contract.test.ts.

t.test('five sidecars, one store: 1 upstream request at start-up and 1 per lifetime; all serve the same token', async (t) => {
  // 20-s tokens refreshed 4 s before expiry (less up to 10 % jitter): a round every 14.4 to 16 s.
  const fleet = memoryFleet(t, { offsets: [0, 0, 0, 0, 0], expiresIn: 20, bufferMs: 4 * S })
  await fleet.start()
  t.equal(fleet.issuer.requests, 1, 'one upstream request for the whole fleet at start-up')
  t.equal(fleet.tokens().size, 1, 'all five serve the same token')
  const adopted = fleet.members.flatMap((m) => m.logger.events('token_refreshed').filter((l) => l.source === 'store'))
  t.equal(adopted.length, 4, 'four adopted it from the store')

  await fleet.run(160 * S)
  const rounds = fleet.issuer.requests - 1
  t.ok(rounds >= 9 && rounds <= 12, `one upstream request per round: ${rounds} in 160 s of 14.4–16-s rounds`)
  t.equal(fleet.tokens().size, 1, 'still one token across the fleet')
  t.same(fleet.violations, [], 'no member ever served an expired token, or claimed more time than it had')
  t.match(await fleet.members[0]!.pool.health(), { status: 'ok', token_store: { status: 'ok' } })
})

t.test('wall clocks off by hours and days: no member serves an expired token, and still about one request per lifetime', async (t) => {
  // Ahead by 2 days, behind by 1 hour, ahead by 3 hours, behind by 5 days, and one correct.
  const fleet = memoryFleet(t, { offsets: [2 * D, -H, 0, 3 * H, -5 * D], expiresIn: 20, bufferMs: 4 * S })
  await fleet.start()
  t.equal(fleet.issuer.requests, 1)
  for (const member of fleet.members) {
    t.ok(member.manager.health().token!.expires_in! <= 20, 'an adopted lifetime is the store\'s, whatever this host\'s clock says')
  }
  await fleet.run(160 * S)
  t.same(fleet.violations, [], 'never an expired token, never more time claimed than it had')
  const rounds = fleet.issuer.requests - 1
  t.ok(rounds >= 9 && rounds <= 12, `${rounds} requests in 160 s of 14.4–16-s rounds`)
  t.equal(fleet.tokens().size, 1)
})

t.test('one host\'s clock steps an hour forward mid-run: it poisons nobody', async (t) => {
  const fleet = memoryFleet(t, { offsets: [0, 0, 0, 0, 0], expiresIn: 20, bufferMs: 4 * S })
  await fleet.start()
  await fleet.run(30 * S)
  fleet.members[2]!.clock.offsetMs += H
  await fleet.run(5 * S)
  fleet.members[3]!.clock.offsetMs -= 2 * D
  await fleet.run(100 * S)
  t.same(fleet.violations, [])
  t.ok(fleet.issuer.requests <= 12, `${fleet.issuer.requests} requests in 135 s`)
  t.equal(fleet.tokens().size, 1)
})

t.test('JWTs: an adopted one is also bounded by its exp on the local clock; a host far ahead fetches its own', async (t) => {
  // Off by a few seconds (within the allowance), and one host an hour ahead.
  const fleet = memoryFleet(t, { offsets: [0, 10 * S, -10 * S, 0, H], expiresIn: 20, bufferMs: 4 * S, jwt: true })
  await fleet.start()
  await fleet.run(160 * S)
  t.same(fleet.violations, [])
  const ahead = fleet.members[4]!
  t.ok(ahead.reads.includes('stale'), 'the host an hour ahead finds every peer token expired by its JWT exp')
  t.equal(ahead.logger.events('token_refreshed').filter((l) => l.source === 'store').length, 0, 'and adopts none')
  const rounds = fleet.issuer.requests - 1
  t.ok(rounds <= 22, `at most two requests per round (${rounds} in about 10 rounds)`)
})

t.test('a crashed peer holds the lock: a forced refresh on five sidecars at once costs one request, within the lock\'s life', async (t) => {
  const fleet = memoryFleet(t, { offsets: [0, 0, 0, 0, 0], expiresIn: 3600, bufferMs: 300 * S })
  await fleet.start()
  await fleet.run(60 * S)
  const before = fleet.issuer.requests
  const lockKey = `${[...fleet.store.keys()][0]!}:lock`
  fleet.store.plant(lockKey, 'a-crashed-peer', 11 * S)
  const start = fleet.time.monotonic()
  let done = 0
  const forced = fleet.members.map(async (m) => {
    await m.manager.forceRefresh()
    done++
  })
  while (done < 5 && fleet.time.monotonic() - start < 30 * S) await fleet.run(250)
  await Promise.all(forced)
  t.equal(fleet.issuer.requests - before, 1, 'one upstream request for the five')
  t.ok(fleet.time.monotonic() - start <= 12 * S, `all answered within the lock's life and a poll (${fleet.time.monotonic() - start} ms)`)
  t.equal(fleet.tokens().size, 1)
})
