import t, { type Test } from 'tap'
import { EntryCipher, type StoredToken } from '../../src/store/entry-cipher.js'
import { LOCK_POLICY, lockTtlMs, SharedTokenTransport, sharedFetchBoundMs } from '../../src/store/shared-transport.js'
import { STORE_BOUNDS, type StoreReadResult } from '../../src/store/types.js'
import { FakeClock, flush, settle } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'
import { MemoryFleetStore } from '../fixtures/memory-store.js'

const S = 1000
const H = 3600 * S
const KEY = 'tokensidecar:v1:abc'
const TIMEOUT = 10 * S
/** A fresh signal per call: none of these is aborted. */
const never = (): AbortSignal => new AbortController().signal

const cipher = new EntryCipher(Buffer.from('the-client-secret'))

/** An unsigned JWT with the given exp (seconds): the transport reads exp, never verifies. */
function jwt (exp: number, id = 'x'): string {
  const b64 = (value: object): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  return `${b64({ alg: 'none' })}.${b64({ exp, jti: id })}.sig`
}

/**
 * A transport over an in-memory store on a fake clock. The store's clock is
 * true time (the fake monotonic time from a fixed origin); the sidecar's wall
 * clock is the fake clock's, which a test may step away from it.
 */
function setup (t: Test, opts: { store?: MemoryFleetStore, clock?: FakeClock, upstream?: FakeTransport } = {}) {
  const clock = opts.clock ?? new FakeClock()
  const origin = clock.now() - clock.monotonic()
  const trueNow = (): number => origin + clock.monotonic()
  const upstream = opts.upstream ?? new FakeTransport()
  const store = opts.store ?? new MemoryFleetStore({ clock: { now: trueNow }, timers: clock })
  const entry = store.entryAt(KEY)
  const reads: StoreReadResult[] = []
  const waits: string[] = []
  const errors: unknown[] = []
  const transport = new SharedTokenTransport({
    upstream,
    store: entry,
    cipher,
    refreshBufferMs: 300 * S,
    upstreamTimeoutMs: TIMEOUT,
    clock,
    timers: clock,
    observer: { read: (r) => reads.push(r), lockWait: (r) => waits.push(r) },
    onStoreError: (err) => errors.push(err)
  })
  t.teardown(() => transport.close())
  /** Writes an entry as a peer would: sealed, issued `ageMs` ago by the store's clock, PX as given. */
  const plant = (accessToken: string, lifetimeMs: number, o: { ageMs?: number, ttlMs?: number, sealer?: EntryCipher, issuedAt?: number } = {}): void => {
    const token: StoredToken = { accessToken, lifetimeMs, issuedAt: o.issuedAt ?? trueNow() - (o.ageMs ?? 0) }
    store.plant(KEY, (o.sealer ?? cipher).seal(token, KEY), o.ttlMs ?? lifetimeMs - (o.ageMs ?? 0))
  }
  const answer = async (expiresInSeconds = 3600): Promise<string> => {
    await settle(() => upstream.open > 0)
    return upstream.succeed(expiresInSeconds)
  }
  const stored = (): StoredToken | undefined => {
    const raw = store.peek(KEY)
    return raw === undefined ? undefined : cipher.open(raw.value, KEY)
  }
  return { clock, trueNow, upstream, store, entry, reads, waits, errors, transport, plant, answer, stored }
}

t.test('a valid peer token is adopted without an upstream request, with what the store says is left', async (t) => {
  const { transport, plant, upstream, reads, store } = setup(t)
  plant('peer-token', 3600 * S, { ageMs: 600 * S })
  t.same(await transport.fetchToken(never()), { accessToken: 'peer-token', expiresInSeconds: 3000, source: 'store' })
  t.equal(upstream.open, 0)
  t.same(reads, ['hit'])
  t.same(store.calls, { read: 1, set: 0, lock: 0, unlock: 0 }, 'no lock taken')
})

t.test('no peer wall clock: the adopted lifetime is the same whatever this host\'s clock says', async (t) => {
  for (const stepMs of [2 * 86400 * S, -H, 5 * H, -3 * 86400 * S]) {
    const { transport, plant, clock } = setup(t)
    clock.stepWall(stepMs)
    plant('peer-token', 2000 * S, { ageMs: 400 * S })
    t.same(await transport.fetchToken(never()), { accessToken: 'peer-token', expiresInSeconds: 1600, source: 'store' }, `wall clock ${stepMs / S} s off`)
  }
})

t.test('an adopted lifetime is the smallest of the PTTL, the issued lifetime from its issue time, and a JWT\'s exp', async (t) => {
  const { transport, plant, clock, trueNow } = setup(t)
  // A replayed entry: its PX says an hour, but it was issued 50 minutes ago for an hour.
  plant('replayed', H, { ageMs: 50 * 60 * S, ttlMs: H })
  t.match(await transport.fetchToken(never()), { accessToken: 'replayed', expiresInSeconds: 600 })
  // A PX beyond the issued lifetime.
  plant('too-long', 2 * H, { issuedAt: trueNow() + 5 * H, ttlMs: 10 * H })
  t.match(await transport.fetchToken(never()), { accessToken: 'too-long', expiresInSeconds: 7200 }, 'never more than issued')
  // A JWT whose exp (by the local clock, + the allowance) comes first.
  const exp = Math.floor(clock.now() / 1000) + 1200
  plant(jwt(exp), H, { issuedAt: trueNow() + 6 * H })
  t.match(await transport.fetchToken(never()), { expiresInSeconds: 1200 + LOCK_POLICY.jwtExpAllowanceMs / S })
  // A PX shorter than both.
  plant('short-pttl', H, { issuedAt: trueNow() + 7 * H, ttlMs: 400 * S })
  t.match(await transport.fetchToken(never()), { accessToken: 'short-pttl', expiresInSeconds: 400 })
})

t.test('an entry with no PX (never expires in the store) is still bounded by its issue time', async (t) => {
  const { transport, store, trueNow } = setup(t)
  store.plant(KEY, cipher.seal({ accessToken: 'no-px', lifetimeMs: H, issuedAt: trueNow() - 1000 * S }, KEY))
  t.match(await transport.fetchToken(never()), { accessToken: 'no-px', expiresInSeconds: 2600 })
})

t.test('an empty store: the lock winner fetches and writes the entry, PX from the issued lifetime less the request\'s time', async (t) => {
  const { transport, store, upstream, reads, clock, trueNow, stored } = setup(t)
  const askedAt = trueNow()
  const pending = transport.fetchToken(never())
  await settle(() => upstream.open > 0)
  await clock.advance(2 * S)
  const token = upstream.succeed(3600)
  t.same(await pending, { accessToken: token, expiresInSeconds: 3600 })
  await flush()
  t.same(reads, ['miss', 'miss'], 'read, then read again under the lock')
  t.same(store.calls, { read: 2, set: 1, lock: 1, unlock: 1 })
  t.equal(store.peek(KEY)?.ttlMs, 3598 * S, 'expires with the token, counted from when it was asked for')
  t.same(stored(), { accessToken: token, lifetimeMs: 3600 * S, issuedAt: askedAt }, 'the issue time is the store\'s clock')
  t.same(store.keys(), [KEY], 'the lock is released')
})

t.test('the token held, an older entry (replayed), or one with no more than the buffer (+5 s) left, is not adopted', async (t) => {
  const { transport, plant, answer, reads, clock, trueNow } = setup(t)
  plant('old-token', 305 * S)
  const first = transport.fetchToken(never())
  const fresh = await answer()
  t.equal((await first).accessToken, fresh)
  t.same(reads.slice(0, 2), ['stale', 'stale'])
  await flush()
  // What we wrote is what we hold: a forced refresh must not take it back from the store.
  await clock.advance(10 * S)
  const second = transport.fetchToken(never())
  const newer = await answer()
  t.equal((await second).accessToken, newer)
  t.equal(reads[2], 'stale')
  await flush()
  // An older entry replayed into the store, still valid: never adopted over the newer token held.
  plant('replayed-older', 3600 * S, { issuedAt: trueNow() - 20 * S })
  reads.length = 0
  const third = transport.fetchToken(never())
  t.equal((await Promise.all([third, answer()]))[0].accessToken, 'fake-token-3')
  t.same(reads.slice(0, 2), ['stale', 'stale'])
})

t.test('adopt only forward: a peer\'s newer entry is adopted, the entry we adopted before is not again', async (t) => {
  const { transport, plant, trueNow, reads, upstream, clock } = setup(t)
  plant('first', H)
  t.match(await transport.fetchToken(never()), { accessToken: 'first' })
  await clock.advance(S)
  plant('second', H, { issuedAt: trueNow() })
  t.match(await transport.fetchToken(never()), { accessToken: 'second' })
  plant('first-again', H, { issuedAt: trueNow() - 2 * S })
  const pending = transport.fetchToken(never())
  await settle(() => upstream.open > 0)
  upstream.succeed()
  await pending
  t.same(reads, ['hit', 'hit', 'stale', 'stale'])
})

t.test('a value larger than 4 KiB is never read whole nor parsed: counted as oversized, fetched instead', async (t) => {
  const { transport, store, answer, reads } = setup(t)
  let opened = 0
  const counting = new (class extends EntryCipher {
    override open (text: string, boundTo: string): StoredToken | undefined {
      opened++
      return super.open(text, boundTo)
    }
  })(Buffer.from('the-client-secret'))
  transport.setCipher(counting)
  store.plant(KEY, 'v2.' + 'A'.repeat(300 * 1024 * 1024 / 1024), 3600 * S)
  const entry = store.entryAt(KEY)
  const read = await entry.read()
  t.equal(read.entry?.head.length, STORE_BOUNDS.maxEntryBytes, 'the store hands over 4 KiB at most')
  const pending = transport.fetchToken(never())
  const token = await answer()
  t.equal((await pending).accessToken, token)
  t.same(reads.slice(0, 2), ['oversized', 'oversized'])
  t.equal(opened, 0, 'never parsed')
})

t.test('a key of another type reads as corrupt, not as a store failure', async (t) => {
  const { transport, entry, answer, reads, errors } = setup(t)
  entry.read = async () => ({ storeNow: Date.now(), entry: { head: '', size: -1, ttlMs: 5000 } })
  const pending = transport.fetchToken(never())
  await answer()
  await pending
  t.same(reads.slice(0, 2), ['undecryptable', 'undecryptable'])
  t.same(errors, [])
})

t.test('a peer holds the lock: look for its entry, backing off, and adopt it', async (t) => {
  const { transport, entry, plant, upstream, waits, clock, reads } = setup(t)
  await entry.lock('a-peer', 30 * S)
  const pending = transport.fetchToken(never())
  await flush()
  for (const step of [50, 100, 150]) await clock.advance(step)
  plant('peer-fetched', 3600 * S)
  await clock.advance(50)
  t.match(await pending, { accessToken: 'peer-fetched', source: 'store' })
  t.equal(upstream.open, 0)
  t.same(waits, ['adopted'])
  t.same(reads, ['miss', 'miss', 'miss', 'hit'], 'looked after 50, 100 and 200 ms')
})

t.test('a crashed peer\'s lock: it expires with the upstream timeout, a waiter takes it, and five waiters make one request', async (t) => {
  const clock = new FakeClock()
  const first = setup(t, { clock })
  const upstream = first.upstream
  const members = [first, ...Array.from({ length: 4 }, () => setup(t, { clock, store: first.store, upstream }))]
  await first.entry.lock('crashed-peer', lockTtlMs(TIMEOUT))
  await clock.advance(S)
  const pending = members.map((m) => m.transport.fetchToken(never()))
  await flush()
  for (let i = 0; i < 50 && upstream.open === 0; i++) await clock.advance(250)
  t.equal(upstream.open, 1, 'one waiter took the expired lock')
  t.ok(clock.monotonic() - 1_000_000 <= lockTtlMs(TIMEOUT) + LOCK_POLICY.maxPollMs, `within a poll of its expiry (${clock.monotonic() - 1_000_000} ms)`)
  upstream.succeed(3600)
  await clock.advance(LOCK_POLICY.maxPollMs)
  const tokens = await Promise.all(pending)
  t.equal(new Set(tokens.map((x) => x.accessToken)).size, 1, 'all five hold the one token')
  t.equal(upstream.open, 0, 'and no other request was made')
  t.same(members.flatMap((m) => m.waits).sort(), ['adopted', 'adopted', 'adopted', 'adopted', 'timed_out'])
})

t.test('a lock holder that crashed (never writes, never unlocks): three waiters make one request between them, however they started', async (t) => {
  const cases = [
    // Cause 1: the lock was taken after the waiters started, so a wait counted from their start ended before it expired.
    { name: 'the holder took the lock just after they started (a slow store)', latencyMs: 100, holderAt: 50, starts: [0, 0, 0], answerAfterMs: 300 },
    // Cause 2: one waiter took the expired lock; the others' waits ended while it fetched.
    { name: 'they started one after another while it held the lock', latencyMs: 0, holderAt: 0, starts: [100, 400, 700], answerAfterMs: 500 }
  ]
  for (const c of cases) {
    await t.test(c.name, async (t) => {
      const clock = new FakeClock()
      const upstream = new FakeTransport()
      let requests = 0
      const fetchToken = upstream.fetchToken.bind(upstream)
      upstream.fetchToken = (signal) => {
        requests++
        return fetchToken(signal)
      }
      const first = setup(t, { clock, upstream })
      const members = [first, setup(t, { clock, store: first.store, upstream }), setup(t, { clock, store: first.store, upstream })]
      first.store.latencyMs = c.latencyMs
      const t0 = clock.monotonic()
      const got: Array<{ accessToken: string, tookMs: number }> = []
      let openedAt: number | undefined
      for (let at = 0; at <= sharedFetchBoundMs(TIMEOUT) + 1000 && got.length < members.length; at += 10) {
        if (at === c.holderAt) void first.entry.lock('crashed-holder', lockTtlMs(TIMEOUT))
        if (at === 250) first.store.latencyMs = 0
        c.starts.forEach((startAt, i) => {
          if (at !== startAt) return
          void members[i]!.transport.fetchToken(never()).then((token) => got.push({ accessToken: token.accessToken, tookMs: clock.monotonic() - t0 - startAt }))
        })
        if (upstream.open > 0) openedAt ??= at
        if (openedAt !== undefined && upstream.open > 0 && at - openedAt >= c.answerAfterMs) upstream.succeed()
        await clock.advance(10)
      }
      t.equal(got.length, 3, 'every waiter has a token')
      t.equal(requests, 1, 'one upstream request for the fleet')
      t.equal(new Set(got.map((g) => g.accessToken)).size, 1, 'all three hold the one token')
      t.ok(openedAt! >= c.holderAt + lockTtlMs(TIMEOUT), `the lock was taken over once it expired (at ${openedAt} ms)`)
      for (const g of got) t.ok(g.tookMs <= sharedFetchBoundMs(TIMEOUT), `within the documented bound (${g.tookMs} ms)`)
      t.same(members.flatMap((m) => m.waits).sort(), ['adopted', 'adopted', 'timed_out'])
      t.same(members.flatMap((m) => m.errors), [], 'no store error reported')
    })
  }
})

t.test('a peer that holds the lock and never writes: look until the store phase ends, then fetch alone (and still share it)', async (t) => {
  const { transport, entry, upstream, waits, clock, stored } = setup(t)
  // Re-taken by another peer as soon as it expires: this one never gets it.
  const relock = async (): Promise<void> => { await entry.lock('a-stuck-peer', 60 * S) }
  await relock()
  const start = clock.monotonic()
  const pending = transport.fetchToken(never())
  await flush()
  for (let i = 0; i < 200 && upstream.open === 0; i++) await clock.advance(100)
  const waited = clock.monotonic() - start
  const lastLook = lockTtlMs(TIMEOUT) + LOCK_POLICY.storeMarginMs - LOCK_POLICY.lastLookMarginMs
  t.ok(waited >= lastLook && waited <= lastLook + 100, `waited the lock's lifetime, then looked for a new holder's entry until the phase ended (${waited} ms)`)
  const token = upstream.succeed()
  t.equal((await pending).accessToken, token)
  t.same(waits, ['timed_out'])
  await flush()
  t.equal(stored()?.accessToken, token, 'written without the lock')
  t.equal(sharedFetchBoundMs(TIMEOUT), 2 * TIMEOUT + 2 * S)
})

t.test('after waiting, the lock comes free and a peer\'s entry appears with it: adopted, counted as a wait that adopted', async (t) => {
  const { transport, entry, plant, upstream, waits, clock } = setup(t)
  await entry.lock('a-peer', 30 * S)
  const lock = entry.lock
  let n = 0
  entry.lock = async (owner, ttl) => {
    // The peer finishes between our look and our second try at the lock.
    if (++n === 2) {
      plant('peer-fetched', 3600 * S)
      await entry.unlock('a-peer')
    }
    return lock(owner, ttl)
  }
  const pending = transport.fetchToken(never())
  await flush()
  await clock.advance(50)
  t.match(await pending, { accessToken: 'peer-fetched', source: 'store' })
  t.equal(upstream.open, 0)
  t.same(waits, ['adopted'])
})

t.test('the winner finds a peer\'s entry on its second look (written between read and lock)', async (t) => {
  const { transport, entry, plant, upstream, store } = setup(t)
  const lock = entry.lock
  entry.lock = async (owner, ttl) => {
    plant('just-written', 3600 * S)
    return lock(owner, ttl)
  }
  t.match(await transport.fetchToken(never()), { accessToken: 'just-written', source: 'store' })
  t.equal(upstream.open, 0)
  await flush()
  t.same(store.keys(), [KEY], 'the lock is released')
})

t.test('entries that do not decrypt (another key, corrupt, another key\'s slot) are ignored and counted, never served', async (t) => {
  const { transport, store, plant, answer, reads, trueNow } = setup(t)
  const foreign = new EntryCipher(Buffer.from('somebody-elses-secret'))
  const cases: Array<[string, () => void]> = [
    ['another key', () => plant('planted', 3600 * S, { sealer: foreign })],
    ['corrupt', () => store.plant(KEY, 'v2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA', H)],
    ['not ours at all', () => store.plant(KEY, '{"access_token":"planted"}', H)],
    ['moved from another key', () => store.plant(KEY, cipher.seal({ accessToken: 'planted', lifetimeMs: H, issuedAt: trueNow() }, 'tokensidecar:v1:other'), H)]
  ]
  for (const [name, plantIt] of cases) {
    reads.length = 0
    plantIt()
    const pending = transport.fetchToken(never())
    const token = await answer()
    const got = await pending
    t.equal(got.accessToken, token, name)
    t.not(got.accessToken, 'planted')
    t.equal(reads[0], 'undecryptable', name)
    await flush()
  }
})

t.test('the store failing at any step: fetch directly, report the error, never throw it', async (t) => {
  for (const step of ['read', 'lock', 'set', 'unlock'] as const) {
    const { transport, entry, answer, errors, reads, store } = setup(t)
    ;(entry as unknown as Record<string, unknown>)[step] = async () => {
      store.calls[step]++
      throw new Error(`store ${step} failed`)
    }
    const pending = transport.fetchToken(never())
    const token = await answer()
    t.equal((await pending).accessToken, token, step)
    await flush()
    t.equal(errors.length, 1, `${step}: reported once`)
    t.match(errors[0], { message: `store ${step} failed` })
    if (step === 'read') {
      t.same(reads, ['error'])
      t.same(store.calls, { read: 1, set: 0, lock: 0, unlock: 0 }, 'read failed: no lock, no write')
    }
  }
})

t.test('the store failing on the look under the lock, or while a peer holds it: fetch directly, release the lock', async (t) => {
  {
    const { transport, entry, answer, errors, store } = setup(t)
    const read = entry.read
    let n = 0
    entry.read = async () => {
      if (++n === 2) throw new Error('connection lost')
      return read()
    }
    const pending = transport.fetchToken(never())
    await answer()
    await pending
    await flush()
    t.match(errors, [{ message: 'connection lost' }])
    t.same(store.keys(), [], 'lock released, nothing written')
  }
  {
    const { transport, entry, answer, errors, clock } = setup(t)
    await entry.lock('a-peer', 30 * S)
    const read = entry.read
    let n = 0
    entry.read = async () => {
      if (++n === 2) throw new Error('connection lost')
      return read()
    }
    const pending = transport.fetchToken(never())
    await flush()
    await clock.advance(50)
    await answer()
    await pending
    t.match(errors, [{ message: 'connection lost' }])
  }
})

t.test('a store too slow for the phase is given up on: the wait keeps its bound', async (t) => {
  const { transport, entry, upstream, clock, errors } = setup(t)
  await entry.lock('a-peer', 60 * S)
  const read = entry.read
  let n = 0
  // The last look before the bound hangs.
  entry.read = async () => ++n < 3 ? read() : new Promise(() => {})
  const start = clock.monotonic()
  const pending = transport.fetchToken(never())
  await flush()
  for (let i = 0; i < 200 && upstream.open === 0; i++) await clock.advance(100)
  const waited = clock.monotonic() - start
  t.ok(waited <= lockTtlMs(TIMEOUT) + LOCK_POLICY.storeMarginMs, `gave up on the store in ${waited} ms`)
  upstream.succeed()
  await pending
  t.match(errors, [{ message: /too slow/ }])
})

t.test('an upstream failure under the lock releases it and rejects', async (t) => {
  const { transport, upstream, store } = setup(t)
  const pending = transport.fetchToken(never())
  await settle(() => upstream.open > 0)
  upstream.fail()
  await t.rejects(pending, { name: 'TokenRequestError' })
  await flush()
  t.same(store.keys(), [], 'released')
})

t.test('shutdown ends a wait for a peer at once', async (t) => {
  const { transport, entry, clock, waits } = setup(t)
  await entry.lock('a-peer', 30 * S)
  const controller = new AbortController()
  const pending = transport.fetchToken(controller.signal)
  await flush()
  await clock.advance(50)
  controller.abort()
  await t.rejects(pending)
  t.equal(clock.monotonic(), 1_000_050, 'no further time passed')
  t.same(waits, [], 'not counted as a wait that timed out')
})

t.test('shutdown ends a wait on the store\'s first connection at once', async (t) => {
  const { transport, entry, upstream } = setup(t)
  // A store call that would wait up to 3 s for the first connection.
  entry.read = () => new Promise(() => {})
  const controller = new AbortController()
  const pending = transport.fetchToken(controller.signal)
  await flush()
  controller.abort()
  await t.rejects(pending)
  t.equal(upstream.open, 0)
  await t.rejects(transport.fetchToken(controller.signal), 'aborted before it starts')
})

t.test('after a credential rotation, entries sealed under the old key are ignored', async (t) => {
  const { transport, plant, answer } = setup(t)
  plant('sealed-under-old', 3600 * S)
  transport.setCipher(new EntryCipher(Buffer.from('the-rotated-secret')))
  const pending = transport.fetchToken(never())
  const token = await answer()
  t.equal((await pending).accessToken, token)
})

t.test('the cipher: sealed entries open only with the same credential and key, and only well-formed', async (t) => {
  const entry = { accessToken: 'tok', lifetimeMs: 60_000, issuedAt: 123 }
  const sealed = cipher.seal(entry, KEY)
  t.match(sealed, /^v2\.[\w-]+$/)
  t.notMatch(sealed, /tok/)
  t.same(cipher.open(sealed, KEY), entry)
  t.not(cipher.seal(entry, KEY), sealed, 'a fresh IV every time')
  t.equal(new EntryCipher(Buffer.from('other')).open(sealed, KEY), undefined)
  t.equal(cipher.open(sealed, `${KEY}x`), undefined)
  t.equal(cipher.open('v2.', KEY), undefined, 'too short')
  t.equal(cipher.open('v1.' + sealed.slice(3), KEY), undefined, 'a v1 entry (peer wall-clock expiry) is not read')
  t.equal(cipher.open(cipher.seal({ ...entry, accessToken: '' }, KEY), KEY), undefined, 'empty token')
  t.equal(cipher.open(cipher.seal({ ...entry, lifetimeMs: 0 }, KEY), KEY), undefined, 'no lifetime')
  t.equal(cipher.open(cipher.seal({ ...entry, issuedAt: Number.NaN }, KEY), KEY), undefined, 'no issue time')
  const tampered = sealed.slice(0, -2) + (sealed.endsWith('A') ? 'BB' : 'AA')
  t.equal(cipher.open(tampered, KEY), undefined, 'authenticated')
})
