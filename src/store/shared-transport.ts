import { randomUUID } from 'node:crypto'
import { UPSTREAM_BOUNDS } from '../engine/schedule.js'
import { systemClock, type Clock, type FetchedToken, type TokenTransport } from '../engine/types.js'
import type { EntryCipher, StoredToken } from './entry-cipher.js'

/** One entry of the shared store and its lock, as the transport needs them; every call is bounded and may throw. */
export interface TokenStore {
  /** The entry's key, bound into its encryption. */
  readonly key: string
  get(): Promise<string | null>
  /** Writes the entry with the token's own expiry. */
  set(value: string, ttlMs: number): Promise<void>
  /** SET NX PX: true when this owner now holds the lock. */
  lock(owner: string, ttlMs: number): Promise<boolean>
  /** Releases the lock only if this owner still holds it. */
  unlock(owner: string): Promise<void>
}

export type StoreReadResult = 'hit' | 'miss' | 'stale' | 'undecryptable' | 'error'

/** Told about the store's part in every token fetch (metrics). */
export interface StoreObserver {
  read(result: StoreReadResult): void
  lockWait(result: 'adopted' | 'timed_out'): void
}

export interface SharedTransportOptions {
  /** The real token request. */
  upstream: TokenTransport
  store: TokenStore
  cipher: EntryCipher
  /** An entry is adopted only with more than this left (TOOLBRIDGE_REFRESH_BUFFER_SECONDS). */
  refreshBufferMs: number
  /** How long to wait for a peer that holds the lock: the upstream timeout. */
  lockWaitMs: number
  observer: StoreObserver
  /** Told when a store call fails, so the failure is logged (at most once a minute) and shown on /healthz. */
  onStoreError: (err: unknown) => void
  clock?: Clock
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>
}

/** First wait between looks at the store while a peer fetches; it doubles up to a second. */
const FIRST_POLL_MS = 50
const MAX_POLL_MS = 1000

function sleep (ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms)
    function done (): void {
      clearTimeout(timer)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}

/**
 * A token transport that asks the fleet's shared store before the token
 * endpoint: a peer's valid token is adopted; otherwise one sidecar wins the
 * lock and fetches while the others wait for its entry. The store is an
 * optimisation: any store failure falls back to fetching directly. The engine
 * above is unchanged and never sees the store; GET /token never reaches it.
 */
export class SharedTokenTransport implements TokenTransport {
  readonly #upstream: TokenTransport
  readonly #store: TokenStore
  #cipher: EntryCipher
  readonly #bufferMs: number
  readonly #lockWaitMs: number
  readonly #observer: StoreObserver
  readonly #onStoreError: (err: unknown) => void
  readonly #clock: Clock
  readonly #sleep: (ms: number, signal: AbortSignal) => Promise<void>
  /** The token this transport handed out last: the one the engine holds, never "new" when read back. */
  #last: string | undefined

  constructor (opts: SharedTransportOptions) {
    this.#upstream = opts.upstream
    this.#store = opts.store
    this.#cipher = opts.cipher
    this.#bufferMs = opts.refreshBufferMs
    this.#lockWaitMs = opts.lockWaitMs
    this.#observer = opts.observer
    this.#onStoreError = opts.onStoreError
    this.#clock = opts.clock ?? systemClock
    this.#sleep = opts.sleep ?? sleep
  }

  /** After a credential rotation: entries sealed under the old key no longer open. */
  setCipher (cipher: EntryCipher): void {
    this.#cipher = cipher
  }

  async fetchToken (signal: AbortSignal): Promise<FetchedToken> {
    const first = await this.#read()
    if (first.token !== undefined) return this.#adopt(first.token)
    if (first.failed) return this.#fetch(signal, false)

    const owner = randomUUID()
    let locked: boolean
    try {
      // Held at most as long as one upstream request can take, so a crashed owner never blocks the fleet for long.
      locked = await this.#store.lock(owner, this.#lockWaitMs + 1000)
    } catch (err) {
      this.#onStoreError(err)
      return this.#fetch(signal, false)
    }
    if (locked) {
      try {
        // A peer may have written between our read and our lock.
        const again = await this.#read()
        if (again.token !== undefined) return this.#adopt(again.token)
        return await this.#fetch(signal, !again.failed)
      } finally {
        await this.#store.unlock(owner).catch((err: unknown) => this.#onStoreError(err))
      }
    }
    return this.#awaitPeer(signal)
  }

  async close (): Promise<void> {
    await this.#upstream.close?.()
  }

  /** A peer holds the lock and is fetching: look for its entry, backing off, until the upstream timeout. */
  async #awaitPeer (signal: AbortSignal): Promise<FetchedToken> {
    const deadline = this.#clock.monotonic() + this.#lockWaitMs
    let delay = FIRST_POLL_MS
    while (!signal.aborted && this.#clock.monotonic() < deadline) {
      await this.#sleep(Math.min(delay, Math.max(0, deadline - this.#clock.monotonic())), signal)
      delay = Math.min(delay * 2, MAX_POLL_MS)
      const seen = await this.#read()
      if (seen.token !== undefined) {
        this.#observer.lockWait('adopted')
        return this.#adopt(seen.token)
      }
      if (seen.failed) return this.#fetch(signal, false)
    }
    // Shutting down: the engine drops the answer anyway.
    signal.throwIfAborted()
    this.#observer.lockWait('timed_out')
    return this.#fetch(signal, true)
  }

  /** The entry when it is one to adopt: decrypts, is not the token we hold, and has more than the refresh buffer left. */
  async #read (): Promise<{ token?: StoredToken, failed: boolean }> {
    let text: string | null
    try {
      text = await this.#store.get()
    } catch (err) {
      this.#onStoreError(err)
      this.#observer.read('error')
      return { failed: true }
    }
    if (text === null) {
      this.#observer.read('miss')
      return { failed: false }
    }
    const token = this.#cipher.open(text, this.#store.key)
    if (token === undefined) {
      this.#observer.read('undecryptable')
      return { failed: false }
    }
    const minLeftMs = this.#bufferMs + UPSTREAM_BOUNDS.minExpiresInSeconds * 1000
    if (token.accessToken === this.#last || token.expiresAt - this.#clock.now() <= minLeftMs) {
      this.#observer.read('stale')
      return { failed: false }
    }
    this.#observer.read('hit')
    return { token, failed: false }
  }

  #adopt (token: StoredToken): FetchedToken {
    this.#last = token.accessToken
    return { accessToken: token.accessToken, expiresInSeconds: Math.floor((token.expiresAt - this.#clock.now()) / 1000), source: 'store' }
  }

  async #fetch (signal: AbortSignal, write: boolean): Promise<FetchedToken> {
    // Expiry counts from when we asked, as the engine counts it.
    const askedAt = this.#clock.now()
    const fetched = await this.#upstream.fetchToken(signal)
    this.#last = fetched.accessToken
    if (write) {
      const expiresAt = askedAt + fetched.expiresInSeconds * 1000
      const ttlMs = expiresAt - this.#clock.now()
      try {
        await this.#store.set(this.#cipher.seal({ accessToken: fetched.accessToken, expiresAt }, this.#store.key), Math.max(1, Math.floor(ttlMs)))
      } catch (err) {
        this.#onStoreError(err)
      }
    }
    return fetched
  }
}
