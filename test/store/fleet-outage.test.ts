import t from 'tap'
import { TokenUnavailableError } from '../../src/engine/errors.js'
import { sharedFetchBoundMs } from '../../src/store/shared-transport.js'
import { flush } from '../fixtures/fake-clock.js'
import { memoryFleet, S } from '../fixtures/memory-fleet.js'

// In process, on simulated time: the store fails in every way it can while the fleet runs.

t.test('the store dies mid-run: every sidecar keeps serving and refreshing directly, degraded; back, it is used again', async (t) => {
  // 16-s tokens refreshed 3 s before expiry: a round every 11.7 to 13 s.
  const fleet = memoryFleet(t, { offsets: [0, 0, 0], expiresIn: 16, bufferMs: 3 * S })
  await fleet.start()
  t.equal(fleet.issuer.requests, 1)

  fleet.store.down = true
  // Their timers fire: each refreshes on its own, straight from the endpoint.
  await fleet.run(14 * S)
  t.equal(fleet.issuer.requests, 4, 'each of the three fetched directly')
  for (const member of fleet.members) {
    t.ok(member.manager.current(), 'still serving')
    t.match(member.pool.health(), { status: 'degraded', token_store: { status: 'unavailable', reason: String } })
  }

  fleet.store.down = false
  await fleet.run(13 * S)
  const before = fleet.issuer.requests
  await fleet.run(13 * S)
  t.equal(fleet.issuer.requests - before, 1, 'one request for the fleet once the store is back')
  for (const member of fleet.members) t.match(member.pool.health(), { status: 'ok', token_store: { status: 'ok' } })
  t.equal(fleet.tokens().size, 1)
  t.same(fleet.violations, [])
})

t.test('the store loses everything: the next round costs one request, and nobody serves an expired token', async (t) => {
  const fleet = memoryFleet(t, { offsets: [0, 0, 0, 0], expiresIn: 20, bufferMs: 4 * S })
  await fleet.start()
  await fleet.run(8 * S)
  fleet.store.flushAll()
  const before = fleet.issuer.requests
  await fleet.run(16 * S)
  t.equal(fleet.issuer.requests - before, 1)
  t.equal(fleet.tokens().size, 1)
  t.same(fleet.violations, [])
})

t.test('a slow store (every call past its bound): each fetches directly, and nobody waits past the bound', async (t) => {
  const fleet = memoryFleet(t, { offsets: [0, 0], expiresIn: 20, bufferMs: 4 * S })
  await fleet.start()
  fleet.store.latencyMs = 2 * S
  await fleet.run(20 * S)
  t.equal(fleet.issuer.requests, 3, 'one each for the round')
  for (const member of fleet.members) t.ok(member.manager.current())
  t.same(fleet.violations, [])
})

t.test('a replayed older entry, still valid, never replaces the newer token a sidecar holds', async (t) => {
  const fleet = memoryFleet(t, { offsets: [0, 0, 0], expiresIn: 3600, bufferMs: 300 * S })
  await fleet.start()
  const [member] = fleet.members
  const first = member!.manager.current()!.accessToken
  const old = fleet.store.peek(fleet.key)!
  await fleet.run(20 * S)
  await member!.manager.forceRefresh()
  const newer = member!.manager.current()!.accessToken
  t.not(newer, first, 'a newer token, written to the store')
  // Someone with write access to the store puts the older sealed entry back, with a long PX.
  fleet.store.plant(fleet.key, old.value, 3000 * S)
  await fleet.run(25 * S)
  await member!.manager.forceRefresh()
  t.not(member!.manager.current()!.accessToken, first, 'the older token is not taken back')
  t.equal(member!.reads.at(-2), 'stale', 'the replayed entry is read as stale')
  t.same(fleet.violations, [])
})

t.test('a GET /token waiter waits at most the documented bound: a stuck lock, a slow store and a hanging token endpoint', async (t) => {
  const fleet = memoryFleet(t, { offsets: [0], expiresIn: 3600, bufferMs: 300 * S })
  fleet.issuer.hang = true
  fleet.store.latencyMs = 400
  // A peer holds the lock and takes it again whenever it expires.
  const relock = (): void => { if (fleet.store.peek(`${fleet.key}:lock`) === undefined) fleet.store.plant(`${fleet.key}:lock`, 'a-stuck-peer', 2 * S) }
  relock()
  const [member] = fleet.members
  const start = fleet.time.monotonic()
  member!.manager.start()
  const waiting = member!.manager.token()
  let answeredAt: number | undefined
  waiting.catch(() => {}).finally(() => { answeredAt = fleet.time.monotonic() - start })
  const bound = sharedFetchBoundMs(10 * S)
  t.equal(bound, 22 * S, 'the README\'s number: a 10-s upstream timeout, the 11-s lock, 1 s of store calls')
  while (answeredAt === undefined && fleet.time.monotonic() - start < 60 * S) {
    relock()
    await fleet.run(100, 100)
  }
  await t.rejects(waiting, TokenUnavailableError)
  t.ok(answeredAt! > 20 * S && answeredAt! <= bound, `answered 503 after ${answeredAt} ms: the whole store phase, then the upstream timeout`)
  t.equal(fleet.issuer.requests, 1, 'fetched alone once the lock never came free')
})

t.test('shutdown ends a wait on the store\'s first connection at once: waiters get their 503', async (t) => {
  const fleet = memoryFleet(t, { offsets: [0, 0], expiresIn: 3600, bufferMs: 300 * S })
  fleet.store.stall()
  for (const m of fleet.members) m.manager.start()
  const waiting = fleet.members.map((m) => m.manager.token())
  await flush()
  const at = fleet.time.monotonic()
  for (const m of fleet.members) m.manager.stop()
  for (const w of waiting) await t.rejects(w, { name: 'TokenUnavailableError', message: /shutting down/ })
  t.equal(fleet.time.monotonic(), at, 'no time passed')
  t.equal(fleet.issuer.requests, 0)
  fleet.store.unstall()
})
