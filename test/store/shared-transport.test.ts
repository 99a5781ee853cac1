import t, { type Test } from 'tap'
import { EntryCipher } from '../../src/store/entry-cipher.js'
import { SharedTokenTransport, type StoreReadResult, type TokenStore } from '../../src/store/shared-transport.js'
import { FakeClock, flush } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'

const S = 1000
const KEY = 'tokensidecar:v1:abc'
const never = new AbortController().signal

/** An in-memory store with the Redis semantics the transport relies on; any call can be made to fail. */
class MemoryStore implements TokenStore {
  readonly key = KEY
  value: string | null = null
  ttlMs: number | undefined
  lockOwner: string | undefined
  failing = new Set<'get' | 'set' | 'lock' | 'unlock'>()
  readonly calls: string[] = []

  async get (): Promise<string | null> {
    this.#maybeFail('get')
    return this.value
  }

  async set (value: string, ttlMs: number): Promise<void> {
    this.#maybeFail('set')
    this.value = value
    this.ttlMs = ttlMs
  }

  async lock (owner: string): Promise<boolean> {
    this.#maybeFail('lock')
    if (this.lockOwner !== undefined) return false
    this.lockOwner = owner
    return true
  }

  async unlock (owner: string): Promise<void> {
    this.#maybeFail('unlock')
    if (this.lockOwner === owner) this.lockOwner = undefined
  }

  #maybeFail (call: 'get' | 'set' | 'lock' | 'unlock'): void {
    this.calls.push(call)
    if (this.failing.has(call)) throw new Error(`store ${call} failed`)
  }
}

const cipher = new EntryCipher(Buffer.from('the-client-secret'))

function setup (t: Test) {
  const clock = new FakeClock()
  const upstream = new FakeTransport()
  const store = new MemoryStore()
  const reads: StoreReadResult[] = []
  const waits: string[] = []
  const errors: unknown[] = []
  const sleeps: number[] = []
  const transport = new SharedTokenTransport({
    upstream,
    store,
    cipher,
    refreshBufferMs: 300 * S,
    lockWaitMs: 10 * S,
    clock,
    observer: { read: (r) => reads.push(r), lockWait: (r) => waits.push(r) },
    onStoreError: (err) => errors.push(err),
    sleep: async (ms) => {
      sleeps.push(ms)
      await clock.advance(ms)
    }
  })
  t.teardown(() => transport.close())
  const plant = (accessToken: string, lifetimeMs: number, sealer = cipher): void => {
    store.value = sealer.seal({ accessToken, expiresAt: clock.now() + lifetimeMs }, KEY)
  }
  const answer = async (expiresInSeconds = 3600): Promise<string> => {
    await until(() => upstream.open > 0)
    return upstream.succeed(expiresInSeconds)
  }
  return { clock, upstream, store, reads, waits, errors, sleeps, transport, plant, answer }
}

async function until (condition: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !condition(); i++) await flush()
  if (!condition()) throw new Error('condition never held')
}

t.test('a valid peer token is adopted without an upstream request, with its remaining lifetime', async (t) => {
  const { transport, plant, upstream, reads, store } = setup(t)
  plant('peer-token', 3600 * S)
  t.same(await transport.fetchToken(never), { accessToken: 'peer-token', expiresInSeconds: 3600, source: 'store' })
  t.equal(upstream.open, 0)
  t.same(reads, ['hit'])
  t.same(store.calls, ['get'], 'no lock taken')
})

t.test('an empty store: the lock winner fetches and writes the entry with the token\'s expiry', async (t) => {
  const { transport, store, answer, reads, clock } = setup(t)
  const pending = transport.fetchToken(never)
  const token = await answer(3600)
  t.same(await pending, { accessToken: token, expiresInSeconds: 3600 })
  t.same(reads, ['miss', 'miss'], 'read, then read again under the lock')
  t.same(store.calls, ['get', 'lock', 'get', 'set', 'unlock'])
  t.equal(store.ttlMs, 3600 * S)
  t.equal(store.lockOwner, undefined, 'released')
  t.same(cipher.open(store.value!, KEY), { accessToken: token, expiresAt: clock.now() + 3600 * S })
})

t.test('the token already held, or one with no more than the buffer (+5 s) left, is not adopted', async (t) => {
  const { transport, plant, answer, reads } = setup(t)
  plant('old-token', 305 * S)
  const first = transport.fetchToken(never)
  const fresh = await answer()
  t.equal((await first).accessToken, fresh)
  t.same(reads.slice(0, 2), ['stale', 'stale'])
  // What we wrote is what we hold: a forced refresh must not take it back from the store.
  const second = transport.fetchToken(never)
  const newer = await answer()
  t.equal((await second).accessToken, newer)
  t.equal(reads[2], 'stale')
})

t.test('a peer holds the lock: wait for its entry, backing off, and adopt it', async (t) => {
  const { transport, store, plant, upstream, waits, sleeps } = setup(t)
  store.lockOwner = 'a-peer'
  let polls = 0
  const get = store.get.bind(store)
  store.get = async () => {
    if (++polls === 4) plant('peer-fetched', 3600 * S)
    return get()
  }
  const token = await transport.fetchToken(never)
  t.match(token, { accessToken: 'peer-fetched', source: 'store' })
  t.equal(upstream.open, 0)
  t.same(waits, ['adopted'])
  t.same(sleeps, [50, 100, 200])
})

t.test('a peer that never writes: after the upstream timeout, fetch directly', async (t) => {
  const { transport, store, answer, waits, sleeps } = setup(t)
  store.lockOwner = 'a-crashed-peer'
  const pending = transport.fetchToken(never)
  const token = await answer()
  t.equal((await pending).accessToken, token)
  t.same(waits, ['timed_out'])
  t.equal(sleeps.reduce((a, b) => a + b, 0), 10 * S, 'waited exactly the bound')
  t.same(sleeps.slice(0, 6), [50, 100, 200, 400, 800, 1000])
  t.ok(cipher.open(store.value!, KEY), 'and still shares what it fetched')
})

t.test('the winner finds a peer\'s entry on its second look (written between read and lock)', async (t) => {
  const { transport, store, plant, upstream } = setup(t)
  const lock = store.lock.bind(store)
  store.lock = async (owner) => {
    plant('just-written', 3600 * S)
    return lock(owner)
  }
  t.match(await transport.fetchToken(never), { accessToken: 'just-written', source: 'store' })
  t.equal(upstream.open, 0)
  t.equal(store.lockOwner, undefined)
})

t.test('entries that do not decrypt (another key, corrupt, another key\'s slot) are ignored and counted, never served', async (t) => {
  const { transport, store, plant, answer, reads } = setup(t)
  const foreign = new EntryCipher(Buffer.from('somebody-elses-secret'))
  const cases: Array<[string, () => void]> = [
    ['another key', () => plant('planted', 3600 * S, foreign)],
    ['corrupt', () => { store.value = 'v1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA' }],
    ['not ours at all', () => { store.value = '{"access_token":"planted"}' }],
    ['moved from another key', () => { store.value = cipher.seal({ accessToken: 'planted', expiresAt: Date.now() + 3600 * S }, 'tokensidecar:v1:other') }]
  ]
  for (const [name, plantIt] of cases) {
    reads.length = 0
    plantIt()
    const pending = transport.fetchToken(never)
    const token = await answer()
    const got = await pending
    t.equal(got.accessToken, token, name)
    t.not(got.accessToken, 'planted')
    t.equal(reads[0], 'undecryptable', name)
  }
})

t.test('the store failing at any step: fetch directly, report the error, never throw it', async (t) => {
  for (const step of ['get', 'lock', 'set', 'unlock'] as const) {
    const { transport, store, answer, errors, reads } = setup(t)
    store.failing.add(step)
    const pending = transport.fetchToken(never)
    const token = await answer()
    t.equal((await pending).accessToken, token, step)
    t.equal(errors.length, 1, `${step}: reported once`)
    t.match(errors[0], { message: `store ${step} failed` })
    if (step === 'get') {
      t.same(reads, ['error'])
      t.same(store.calls, ['get'], 'get failed: no lock, no write')
    }
  }
})

t.test('the store failing while a peer holds the lock: fetch directly', async (t) => {
  const { transport, store, answer, errors } = setup(t)
  store.lockOwner = 'a-peer'
  const get = store.get.bind(store)
  let n = 0
  store.get = async () => {
    if (++n === 2) throw new Error('connection lost')
    return get()
  }
  const pending = transport.fetchToken(never)
  const token = await answer()
  t.equal((await pending).accessToken, token)
  t.match(errors, [{ message: 'connection lost' }])
})

t.test('shutdown ends a wait for a peer at once', async (t) => {
  const clock = new FakeClock()
  const store = new MemoryStore()
  store.lockOwner = 'a-peer'
  const upstream = new FakeTransport()
  const waits: string[] = []
  const transport = new SharedTokenTransport({ upstream, store, cipher, refreshBufferMs: 0, lockWaitMs: 10 * S, clock, observer: { read () {}, lockWait: (r) => waits.push(r) }, onStoreError () {} })
  const controller = new AbortController()
  const pending = transport.fetchToken(controller.signal)
  await flush()
  controller.abort()
  await t.rejects(pending, 'the aborted upstream request rejects, as undici does')
  t.equal(clock.monotonic(), 1_000_000, 'no fake time passed: the real sleep was cut short')
  t.same(waits, [], 'not counted as a wait that timed out')
})

t.test('after a credential rotation, entries sealed under the old key are ignored', async (t) => {
  const { transport, plant, answer } = setup(t)
  plant('sealed-under-old', 3600 * S)
  transport.setCipher(new EntryCipher(Buffer.from('the-rotated-secret')))
  const pending = transport.fetchToken(never)
  const token = await answer()
  t.equal((await pending).accessToken, token)
})

t.test('the cipher: sealed entries open only with the same credential and key, and only well-formed', async (t) => {
  const sealed = cipher.seal({ accessToken: 'tok', expiresAt: 123 }, KEY)
  t.match(sealed, /^v1\.[\w-]+$/)
  t.notMatch(sealed, /tok/)
  t.same(cipher.open(sealed, KEY), { accessToken: 'tok', expiresAt: 123 })
  t.not(cipher.seal({ accessToken: 'tok', expiresAt: 123 }, KEY), sealed, 'a fresh IV every time')
  t.equal(new EntryCipher(Buffer.from('other')).open(sealed, KEY), undefined)
  t.equal(cipher.open(sealed, `${KEY}x`), undefined)
  t.equal(cipher.open('v1.', KEY), undefined, 'too short')
  t.equal(cipher.open(cipher.seal({ accessToken: '', expiresAt: 1 }, KEY), KEY), undefined, 'empty token')
  t.equal(cipher.open(cipher.seal({ accessToken: 'x', expiresAt: Number.NaN }, KEY), KEY), undefined, 'no expiry')
  const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA')
  t.equal(cipher.open(tampered, KEY), undefined, 'authenticated')
})
