import t, { type Test } from 'tap'
import { Redis } from 'ioredis'
import { RedisTokenStore } from '../../src/store/redis-store.js'
import { STORE_BOUNDS, type FleetStore, type TokenStore } from '../../src/store/types.js'
import { MemoryFleetStore } from '../fixtures/memory-store.js'
import { MemoryLogger } from '../fixtures/memory-logger.js'
import { RedisServer } from '../fixtures/redis-server.js'

// One contract, two stores: the in-memory store the fleet tests and the simulator run on
// must behave as RedisTokenStore against a real redis-server does, so they cannot drift.

const IDENTITY = { tokenUrl: 'https://tenant.example/oauth/token', clientId: 'cid', audience: 'https://api.example', organization: undefined, scope: undefined }
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

interface Subject {
  store: FleetStore
  entry: TokenStore
  /** Writes a raw value as anyone with access to the store could (no PX when ttlMs is undefined). */
  plant(value: string, ttlMs?: number): Promise<void>
}

const subjects: Array<[string, (t: Test) => Promise<Subject>]> = [
  ['memory', async () => {
    const store = new MemoryFleetStore({ clock: { now: () => Date.now() } })
    const entry = store.entry(IDENTITY)
    return { store, entry, plant: async (value, ttlMs) => store.plant(entry.key, value, ttlMs) }
  }],
  ['redis', async (t) => {
    const redis = await RedisServer.start()
    t.teardown(() => redis.stop())
    const store = new RedisTokenStore({ url: new URL(redis.url), prefix: 'tokensidecar:v1:', logger: new MemoryLogger() })
    t.teardown(() => store.close())
    const raw = new Redis(redis.url)
    t.teardown(() => raw.disconnect())
    const entry = store.entry(IDENTITY)
    return {
      store,
      entry,
      plant: async (value, ttlMs) => { await (ttlMs === undefined ? raw.set(entry.key, value) : raw.set(entry.key, value, 'PX', ttlMs)) }
    }
  }]
]

for (const [name, make] of subjects) {
  t.test(`${name}: the store contract`, async (t) => {
    const { store, entry, plant } = await make(t)
    t.match(entry.key, /^tokensidecar:v1:[0-9a-f]{64}$/, 'the key: the prefix and a hash, no identity in it')

    const missing = await entry.read()
    t.equal(missing.entry, undefined, 'no entry')
    t.ok(Math.abs(missing.storeNow - Date.now()) < 2000, 'the store\'s own time comes with every read')

    await entry.set('v2.some-entry', 60_000)
    const { entry: found } = await entry.read()
    t.equal(found?.head, 'v2.some-entry')
    t.equal(found?.size, 13)
    t.ok(found!.ttlMs > 59_000 && found!.ttlMs <= 60_000, `PTTL from SET PX (${found!.ttlMs})`)

    await plant('x'.repeat(10 * 1024), 60_000)
    const big = (await entry.read()).entry!
    t.equal(big.head.length, STORE_BOUNDS.maxEntryBytes, 'at most 4 KiB is read')
    t.equal(big.size, 10 * 1024, 'and the whole length is known')

    await plant('no-expiry')
    t.equal((await entry.read()).entry?.ttlMs, -1, 'a key without PX: PTTL -1')

    await entry.set('short', 100)
    await sleep(150)
    t.equal((await entry.read()).entry, undefined, 'gone after its PX')

    t.equal(await entry.lock('owner-a', 200), true, 'SET NX: taken')
    t.equal(await entry.lock('owner-b', 200), false, 'held')
    await entry.unlock('owner-b')
    t.equal(await entry.lock('owner-b', 200), false, 'only the owner releases it')
    await entry.unlock('owner-a')
    t.equal(await entry.lock('owner-b', 100), true, 'released by its owner')
    await sleep(150)
    t.equal(await entry.lock('owner-c', 100), true, 'expired after its PX')
    t.equal((await entry.read()).entry, undefined, 'the lock is not the entry')

    t.same(store.health(), { status: 'ok' })
  })
}
