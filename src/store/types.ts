/**
 * The store seam: what the fleet's shared token store offers, whatever holds
 * it (Redis/Valkey through RedisTokenStore, or the in-memory store the tests
 * and the simulator use). The engine knows none of these types: it sees a
 * TokenTransport (SharedTokenTransport) and a health callback.
 */

/** The store's bounds: every call is short, and nothing large is ever read. */
export const STORE_BOUNDS = Object.freeze({
  /** Every store call is bounded by this: a slow store must never delay a token for long. */
  callTimeoutMs: 500,
  /**
   * The first connection may take longer: at start-up, on a busy host,
   * connecting can outlast a call, and a sidecar that gives up then fetches a
   * token of its own instead of sharing the fleet's.
   */
  firstConnectTimeoutMs: 3000,
  /** An entry is a few hundred bytes; more than this is corrupt, counted and never parsed. */
  maxEntryBytes: 4096,
  /** `token_store_unavailable` is logged at most this often. */
  logIntervalMs: 60_000
})

/** What identifies a token: any difference is a different entry. */
export interface TokenIdentity {
  tokenUrl: string
  clientId: string
  audience: string
  organization: string | undefined
  scope: string | undefined
}

/** One bounded read of an entry, taken in one round trip. */
export interface EntryRead {
  /** The store's own clock (TIME), epoch ms: the one clock every peer shares. */
  storeNow: number
  /** The entry, or undefined when there is none. */
  entry: {
    /** At most STORE_BOUNDS.maxEntryBytes of the value (GETRANGE 0 4095). */
    head: string
    /** The whole value's length in bytes (STRLEN), or -1 when the key holds something other than a string. */
    size: number
    /** What the store says is left of the entry (PTTL), by the store's own clock: -1 when it never expires. */
    ttlMs: number
  } | undefined
}

/** One entry of the shared store and its lock; every call is bounded and may throw. */
export interface TokenStore {
  /** The entry's key, bound into its encryption. */
  readonly key: string
  /** The entry (bounded) with its remaining lifetime, and the store's time. */
  read(): Promise<EntryRead>
  /** Writes the entry to expire after ttlMs (SET PX). */
  set(value: string, ttlMs: number): Promise<void>
  /** SET NX PX: true when this owner now holds the lock. */
  lock(owner: string, ttlMs: number): Promise<boolean>
  /** Releases the lock only if this owner still holds it. */
  unlock(owner: string): Promise<void>
}

/** A shared store's state; while it is unavailable the sidecar fetches directly and says `degraded`. */
export interface StoreHealth {
  status: 'ok' | 'unavailable'
  reason?: string
}

/** A connection to the fleet's store: one entry per token identity. */
export interface FleetStore {
  entry(identity: TokenIdentity): TokenStore
  health(): StoreHealth
  /** Records a failed call: shown on /healthz, logged at most once a minute. */
  failed(err: unknown): void
  /** Closes the connection; a call waiting for it fails at once. */
  close(): Promise<void>
}

/**
 * How a read went: hit (adopted), miss, stale (too little left, or not newer
 * than the token held), undecryptable (another key, or corrupt), oversized
 * (larger than the bound, never parsed), error (the call failed).
 */
export type StoreReadResult = 'hit' | 'miss' | 'stale' | 'undecryptable' | 'oversized' | 'error'

/** Told about the store's part in every token fetch (metrics). */
export interface StoreObserver {
  read(result: StoreReadResult): void
  lockWait(result: 'adopted' | 'timed_out'): void
}
