import type { EntryRead, TokenStore } from '../src/store/types.js'
import { STORE_BOUNDS } from '../src/store/types.js'
import type { Prng } from './random.js'
import type { Scheduler } from './scheduler.js'

export type StoreFault = 'down' | 'pause' | 'slow'

interface Held { value: string, expiresAt: number | undefined }

/**
 * The fleet's store with the Redis semantics the sidecar relies on (SET PX,
 * SET NX PX, a bounded read with STRLEN, PTTL and TIME, owner-checked
 * release), keyed on true time: the store's clock is the one every host
 * shares. Each call travels for a latency; the server applies it on arrival
 * and answers after the round trip. Faults: down (calls fail after the call
 * bound, as ioredis waiting for a reconnect does), pause (calls wait until it
 * ends; past the bound the client gives up but the server still applies
 * them), slow (latencies around the bound), lose everything, planted values.
 * A caller that crashed never hears its answer.
 */
export class SimStore {
  readonly #sched: Scheduler
  readonly #rng: Prng
  readonly #epochMs: number
  readonly #data = new Map<string, Held>()
  fault: StoreFault | undefined
  pausedUntil = 0
  calls = 0

  constructor (sched: Scheduler, rng: Prng, epochMs: number) {
    this.#sched = sched
    this.#rng = rng
    this.#epochMs = epochMs
  }

  entry (key: string, alive: () => boolean): TokenStore {
    const lockKey = `${key}:lock`
    return {
      key,
      read: () => this.#call(alive, () => this.#read(key)),
      set: (value, ttlMs) => this.#call(alive, () => { this.#data.set(key, { value, expiresAt: this.#sched.now + ttlMs }) }),
      lock: (owner, ttlMs) => this.#call(alive, () => {
        if (this.#get(lockKey) !== undefined) return false
        this.#data.set(lockKey, { value: owner, expiresAt: this.#sched.now + ttlMs })
        return true
      }),
      unlock: (owner) => this.#call(alive, () => {
        if (this.#get(lockKey)?.value === owner) this.#data.delete(lockKey)
      })
    }
  }

  /** The store lost everything (a restart without persistence). */
  flushAll (): void {
    this.#data.clear()
  }

  plant (key: string, value: string, ttlMs: number | undefined): void {
    this.#data.set(key, { value, expiresAt: ttlMs === undefined ? undefined : this.#sched.now + ttlMs })
  }

  /** The raw value under a key and what is left of it (ms, Infinity without expiry), or undefined. */
  peek (key: string): { value: string, leftMs: number } | undefined {
    const held = this.#get(key)
    return held === undefined ? undefined : { value: held.value, leftMs: held.expiresAt === undefined ? Infinity : held.expiresAt - this.#sched.now }
  }

  /** A key is live while now <= its expiry, as in Redis. */
  #get (key: string): Held | undefined {
    const held = this.#data.get(key)
    if (held?.expiresAt !== undefined && this.#sched.now > held.expiresAt) {
      this.#data.delete(key)
      return undefined
    }
    return held
  }

  #read (key: string): EntryRead {
    const held = this.#get(key)
    const storeNow = this.#epochMs + this.#sched.now
    if (held === undefined) return { storeNow, entry: undefined }
    const bytes = Buffer.byteLength(held.value)
    return {
      storeNow,
      entry: {
        head: bytes <= STORE_BOUNDS.maxEntryBytes ? held.value : Buffer.from(held.value).subarray(0, STORE_BOUNDS.maxEntryBytes).toString('utf8'),
        size: bytes,
        ttlMs: held.expiresAt === undefined ? -1 : Math.round(held.expiresAt - this.#sched.now)
      }
    }
  }

  #call<T> (alive: () => boolean, run: () => T): Promise<T> {
    const sched = this.#sched
    sched.dirty = true
    this.calls++
    const bound = STORE_BOUNDS.callTimeoutMs
    const oneWay = this.fault === 'slow' ? this.#rng.range(50, 400) : this.#rng.range(0.1, 2)
    return new Promise<T>((resolve, reject) => {
      const answer = (settle: () => void): void => {
        if (!alive()) return
        sched.dirty = true
        settle()
      }
      if (this.fault === 'down') {
        sched.after(bound, () => answer(() => reject(new Error('not connected (reconnecting) after 500 ms'))))
        return
      }
      const arrives = Math.max(sched.now + oneWay, this.pausedUntil)
      const replies = arrives + oneWay
      let result: T
      sched.at(arrives, () => { result = run() })
      if (replies - sched.now > bound) {
        sched.after(bound, () => answer(() => reject(new Error('Command timed out'))))
      } else {
        sched.at(replies, () => answer(() => resolve(result)))
      }
    })
  }
}
