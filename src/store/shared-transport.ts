import { randomUUID } from 'node:crypto'
import { UPSTREAM_BOUNDS } from '../engine/schedule.js'
import { type Clock, type FetchedToken, type Timers, type TokenTransport } from '../engine/types.js'
import type { EntryCipher, StoredToken } from './entry-cipher.js'
import { STORE_BOUNDS, type StoreObserver, type TokenStore } from './types.js'
import { jwtExp } from '../jwt.js'
import { systemClock, systemTimers } from '../engine/clock.js'

/**
 * The lock and the wait for a peer. A lock outlives one upstream request by
 * `ttlMarginMs` (its write). The store phase of a fetch lasts the lock's
 * lifetime + `storeMarginMs` from its start. A waiter that finds the lock
 * taken looks at the store, trying to take the lock at every look, until that
 * lock must have expired: its lifetime after the store answered the first try
 * (the lock was taken before that answer, so by the store's clock, never a
 * peer's). If another waiter took the expired lock first, it keeps looking for
 * that one's entry, quickly again, until the phase ends; only then does it
 * fetch alone. So a crashed holder costs the fleet one fetch, not one per waiter.
 */
export const LOCK_POLICY = Object.freeze({
  ttlMarginMs: 1000,
  storeMarginMs: 1000,
  /** First wait between looks at the store while a peer fetches; it doubles up to maxPollMs. */
  firstPollMs: 50,
  maxPollMs: 1000,
  /** The last look of a wait starts this long before the store phase ends: room for its call and one try at the lock. */
  lastLookMarginMs: 200,
  /**
   * An adopted JWT is served no longer than its `exp` by the local clock plus
   * this: a local clock a little ahead of the issuer's still adopts; the
   * store's PTTL and the issued lifetime bound the rest.
   */
  jwtExpAllowanceMs: 30_000
})

/** How long the lock is held: one upstream request and its write. */
export function lockTtlMs (upstreamTimeoutMs: number): number {
  return upstreamTimeoutMs + LOCK_POLICY.ttlMarginMs
}

/**
 * The longest a fetch through the store takes: the store phase (the lock's
 * lifetime and the store calls around it), then one upstream request alone.
 * A GET /token that finds no token waits at most this.
 */
export function sharedFetchBoundMs (upstreamTimeoutMs: number): number {
  return lockTtlMs(upstreamTimeoutMs) + LOCK_POLICY.storeMarginMs + upstreamTimeoutMs
}

export interface SharedTransportOptions {
  /** The real token request. */
  upstream: TokenTransport
  store: TokenStore
  cipher: EntryCipher
  /** An entry is adopted only with more than this left (TOOLBRIDGE_REFRESH_BUFFER_SECONDS). */
  refreshBufferMs: number
  /** The upstream request's bound (TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS): the lock's life follows it. */
  upstreamTimeoutMs: number
  observer: StoreObserver
  /** Told when a store call fails, so the failure is logged (at most once a minute) and shown on /healthz. */
  onStoreError: (err: unknown) => void
  clock?: Clock
  timers?: Timers
}

type Look = { token: StoredToken, leftMs: number, failed: false } | { token?: undefined, failed: boolean }
type Call<T> = { ok: true, value: T } | { ok: false }

const CUT_OFF = Symbol('cut off')

/**
 * A token transport that asks the fleet's shared store before the token
 * endpoint: a peer's valid token is adopted; otherwise one sidecar wins the
 * lock and fetches while the others wait for its entry. The store is an
 * optimisation: any store failure falls back to fetching directly. No peer's
 * wall clock is trusted: an adopted token's lifetime comes from the store's
 * own clock (PTTL, and the store-clock issue time in the entry), capped by
 * the issued lifetime and a JWT's exp.
 */
export class SharedTokenTransport implements TokenTransport {
  readonly #upstream: TokenTransport
  readonly #store: TokenStore
  #cipher: EntryCipher
  readonly #bufferMs: number
  readonly #upstreamTimeoutMs: number
  readonly #observer: StoreObserver
  readonly #onStoreError: (err: unknown) => void
  readonly #clock: Clock
  readonly #timers: Timers
  /** The token this transport handed out last, and its store-clock issue time when known: only newer entries are adopted. */
  #held: { accessToken: string, issuedAt: number | undefined } | undefined
  /** The store's clock at the latest read, and the monotonic time of that read. */
  #storeTime: { storeNow: number, at: number } | undefined

  constructor (opts: SharedTransportOptions) {
    this.#upstream = opts.upstream
    this.#store = opts.store
    this.#cipher = opts.cipher
    this.#bufferMs = opts.refreshBufferMs
    this.#upstreamTimeoutMs = opts.upstreamTimeoutMs
    this.#observer = opts.observer
    this.#onStoreError = opts.onStoreError
    this.#clock = opts.clock ?? systemClock
    this.#timers = opts.timers ?? systemTimers
  }

  /** After a credential rotation: entries sealed under the old key no longer open. */
  setCipher (cipher: EntryCipher): void {
    this.#cipher = cipher
  }

  async fetchToken (signal: AbortSignal): Promise<FetchedToken> {
    const lockTtl = lockTtlMs(this.#upstreamTimeoutMs)
    const phaseEnd = this.#clock.monotonic() + lockTtl + LOCK_POLICY.storeMarginMs
    const lookEnd = phaseEnd - LOCK_POLICY.lastLookMarginMs
    const first = await this.#look(signal, phaseEnd)
    if (first.token !== undefined) return this.#adopt(first)
    if (first.failed) return this.#fetch(signal)

    let delay: number = LOCK_POLICY.firstPollMs
    /** When the lock we found taken has expired (monotonic): set at the answer to the first try. */
    let waitEnd: number | undefined
    /** Past waitEnd: the lock we found expired, and another waiter took it over. */
    let overtaken = false
    for (;;) {
      const owner = randomUUID()
      const locked = await this.#call(() => this.#store.lock(owner, lockTtl), signal, phaseEnd)
      if (!locked.ok) return this.#fetch(signal)
      if (locked.value) {
        // A peer may have written between our look and our lock.
        const again = await this.#look(signal, phaseEnd)
        if (again.token !== undefined) {
          this.#release(owner)
          if (waitEnd !== undefined) this.#observer.lockWait('adopted')
          return this.#adopt(again)
        }
        if (waitEnd !== undefined) this.#observer.lockWait('timed_out')
        if (!again.failed) return this.#fetch(signal, owner)
        this.#release(owner)
        return this.#fetch(signal)
      }
      const now = this.#clock.monotonic()
      // The lock was taken before the store answered us: it has expired one lifetime after this answer.
      waitEnd ??= Math.min(now + lockTtl, lookEnd)
      if (now >= waitEnd && !overtaken) {
        overtaken = true
        delay = LOCK_POLICY.firstPollMs
      }
      const until = overtaken ? lookEnd : waitEnd
      if (now >= until) break
      await this.#sleep(Math.min(delay, until - now), signal)
      delay = Math.min(delay * 2, LOCK_POLICY.maxPollMs)
      const seen = await this.#look(signal, phaseEnd)
      if (seen.token !== undefined) {
        this.#observer.lockWait('adopted')
        return this.#adopt(seen)
      }
      if (seen.failed) return this.#fetch(signal)
    }
    // No peer's entry came within the store phase: fetch alone, and still share what we get.
    this.#observer.lockWait('timed_out')
    return this.#fetch(signal, null)
  }

  async close (): Promise<void> {
    await this.#upstream.close?.()
  }

  /**
   * One store call, cut short by shutdown (the abort rejects at once, even
   * while the store waits for its first connection) and by the end of the
   * store phase, so the wait for a token keeps its bound.
   */
  async #call<T> (run: () => Promise<T>, signal: AbortSignal, endAt: number): Promise<Call<T>> {
    signal.throwIfAborted()
    const call = run()
    let outcome: T | typeof CUT_OFF
    try {
      outcome = await this.#race(call, signal, endAt)
      if (outcome === CUT_OFF) throw new Error('token store too slow: gave up waiting for it')
    } catch (err) {
      signal.throwIfAborted()
      call.catch(() => {})
      this.#onStoreError(err)
      return { ok: false }
    }
    return { ok: true, value: outcome }
  }

  /** The call's answer, CUT_OFF at endAt, or the abort. */
  #race<T> (call: Promise<T>, signal: AbortSignal, endAt: number): Promise<T | typeof CUT_OFF> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.#timers.clearTimeout(timer)
        signal.removeEventListener('abort', onAbort)
      }
      const onAbort = (): void => {
        done()
        reject(signal.reason)
      }
      const timer = this.#timers.setTimeout(() => {
        done()
        resolve(CUT_OFF)
      }, Math.max(0, endAt - this.#clock.monotonic()))
      signal.addEventListener('abort', onAbort, { once: true })
      call.then((value) => {
        done()
        resolve(value)
      }, (err: unknown) => {
        done()
        reject(err)
      })
    })
  }

  /**
   * The entry when it is one to adopt: bounded in size, decrypts, newer than
   * the token held, and has more than the refresh buffer (+ 5 s) left by the
   * smallest of its PTTL, its issued lifetime from its store-clock issue time,
   * and a JWT's exp by the local clock.
   */
  async #look (signal: AbortSignal, endAt: number): Promise<Look> {
    const read = await this.#call(() => this.#store.read(), signal, endAt)
    if (!read.ok) {
      this.#observer.read('error')
      return { failed: true }
    }
    const { storeNow, entry } = read.value
    this.#storeTime = { storeNow, at: this.#clock.monotonic() }
    if (entry === undefined) {
      this.#observer.read('miss')
      return { failed: false }
    }
    if (entry.size > STORE_BOUNDS.maxEntryBytes) {
      this.#observer.read('oversized')
      return { failed: false }
    }
    const token = entry.size < 0 ? undefined : this.#cipher.open(entry.head, this.#store.key)
    if (token === undefined) {
      this.#observer.read('undecryptable')
      return { failed: false }
    }
    const leftMs = Math.min(
      entry.ttlMs < 0 ? Infinity : entry.ttlMs,
      token.lifetimeMs,
      token.issuedAt + token.lifetimeMs - storeNow,
      this.#jwtLeftMs(token.accessToken)
    )
    const held = this.#held
    const older = held !== undefined && (token.accessToken === held.accessToken || (held.issuedAt !== undefined && token.issuedAt <= held.issuedAt))
    if (older || leftMs <= this.#bufferMs + UPSTREAM_BOUNDS.minExpiresInSeconds * 1000) {
      this.#observer.read('stale')
      return { failed: false }
    }
    this.#observer.read('hit')
    return { token, leftMs, failed: false }
  }

  #jwtLeftMs (accessToken: string): number {
    const exp = jwtExp(accessToken)
    return exp === undefined ? Infinity : exp * 1000 - this.#clock.now() + LOCK_POLICY.jwtExpAllowanceMs
  }

  #adopt (look: { token: StoredToken, leftMs: number }): FetchedToken {
    this.#held = { accessToken: look.token.accessToken, issuedAt: look.token.issuedAt }
    return { accessToken: look.token.accessToken, expiresInSeconds: Math.floor(look.leftMs / 1000), source: 'store' }
  }

  /** The store's clock now, estimated from the latest read and monotonic time since. */
  #storeNow (): number | undefined {
    const seen = this.#storeTime
    return seen === undefined ? undefined : seen.storeNow + (this.#clock.monotonic() - seen.at)
  }

  /**
   * Fetches from the token endpoint. `owner`: we hold the lock, so write the
   * entry and then release it; null: write without the lock (a wait that
   * timed out still shares what it fetched); undefined: the store failed, leave it.
   * The write runs after the token is handed to the engine: no wait for it.
   */
  async #fetch (signal: AbortSignal, owner?: string | null): Promise<FetchedToken> {
    // Expiry counts from when we asked, as the engine counts it, by the store's clock.
    const askedAt = this.#clock.monotonic()
    const issuedAt = this.#storeNow()
    let fetched: FetchedToken
    try {
      fetched = await this.#upstream.fetchToken(signal)
    } catch (err) {
      if (typeof owner === 'string') this.#release(owner)
      throw err
    }
    this.#held = { accessToken: fetched.accessToken, issuedAt }
    if (owner !== undefined) void this.#write(fetched, askedAt, issuedAt, owner)
    return fetched
  }

  async #write (fetched: FetchedToken, askedAt: number, issuedAt: number | undefined, owner: string | null): Promise<void> {
    const lifetimeMs = fetched.expiresInSeconds * 1000
    const ttlMs = Math.floor(lifetimeMs - (this.#clock.monotonic() - askedAt))
    if (issuedAt !== undefined && ttlMs >= 1) {
      const value = this.#cipher.seal({ accessToken: fetched.accessToken, lifetimeMs, issuedAt }, this.#store.key)
      await this.#store.set(value, ttlMs).catch((err: unknown) => this.#onStoreError(err))
    }
    if (owner !== null) this.#release(owner)
  }

  #release (owner: string): void {
    this.#store.unlock(owner).catch((err: unknown) => this.#onStoreError(err))
  }

  #sleep (ms: number, signal: AbortSignal): Promise<void> {
    return new Promise((resolve, reject) => {
      const abort = (): void => {
        this.#timers.clearTimeout(timer)
        reject(signal.reason)
      }
      const timer = this.#timers.setTimeout(() => {
        signal.removeEventListener('abort', abort)
        resolve()
      }, ms)
      signal.addEventListener('abort', abort, { once: true })
    })
  }
}
