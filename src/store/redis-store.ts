import { Redis } from 'ioredis'
import type { EngineLogger } from '../engine/types.js'
import { entryKey } from './entry-key.js'
import { STORE_BOUNDS, type EntryRead, type FleetStore, type StoreHealth, type TokenIdentity, type TokenStore } from './types.js'

/** How often a store whose call failed on a live connection is probed (PING), so health follows it back. */
export const STORE_PROBE_INTERVAL_MS = 1000
/** Reconnect attempts back off to this: a store that is back is used (and healthy) within about a second. */
export const STORE_RECONNECT_MAX_MS = 1000

// Deletes the lock only if it still holds our owner id (a lock that expired and was taken by a peer stays).
const UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

// One round trip, bounded: the store's time, the entry's PTTL, its length and at most ARGV[1] bytes of it.
// A key of another type (planted) reads as size -1 instead of failing the call.
const READ = `local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return {'', 0, -2, now} end
if redis.call('TYPE', KEYS[1])['ok'] ~= 'string' then return {'', -1, ttl, now} end
return {redis.call('GETRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1), redis.call('STRLEN', KEYS[1]), ttl, now}`

export interface RedisStoreOptions {
  url: URL
  prefix: string
  logger: EngineLogger
}

/**
 * The fleet's shared token store on a Redis-protocol server (Redis, Valkey,
 * Upstash) through ioredis, which owns the protocol, TLS (rediss://) and
 * reconnecting. Calls fail fast instead of queueing while it is unreachable,
 * and health follows the connection's own state.
 */
export class RedisTokenStore implements FleetStore {
  readonly #client: Redis
  readonly #prefix: string
  readonly #log: EngineLogger
  readonly #scrub: (text: string) => string
  readonly #where: string
  #connected = false
  #lastLogAt = -Infinity
  #failure: string | undefined
  /** Whether `token_store_unavailable` was logged since the store last came back. */
  #announced = false
  #closed = false
  /** One wait for the connection that every call shares: one 'ready' listener however many calls wait. */
  #readyWait: { promise: Promise<void>, reject: (err: Error) => void } | undefined
  #probe: NodeJS.Timeout | undefined

  constructor (opts: RedisStoreOptions) {
    this.#prefix = opts.prefix
    this.#log = opts.logger
    const password = decodeURIComponent(opts.url.password)
    this.#scrub = (text) => password === '' ? text : text.replaceAll(password, '[redacted]')
    this.#where = `${opts.url.protocol}//${opts.url.host}`
    this.#client = new Redis(opts.url.href, {
      connectTimeout: STORE_BOUNDS.firstConnectTimeoutMs,
      commandTimeout: STORE_BOUNDS.callTimeoutMs,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Reconnect for ever, backing off to 1 s: the store is an optimisation that comes back on its own,
      // and /healthz should say so within a couple of seconds.
      retryStrategy: (times) => Math.min(times * 200, STORE_RECONNECT_MAX_MS),
      // rediss://: TLS with Node's trust store (plus NODE_EXTRA_CA_CERTS) and host name checks.
      ...(opts.url.protocol === 'rediss:' ? { tls: {} } : {})
    })
    this.#client.on('error', (err: Error) => this.failed(err))
    this.#client.on('ready', () => {
      this.#recovered(this.#connected ? 'token_store_recovered' : 'token_store_ready')
      this.#connected = true
    })
    // The connection's own state: a lost connection is unavailable at once, not at the next call.
    this.#client.on('reconnecting', () => this.failed(new Error('connection lost, reconnecting')))
    this.#client.on('end', () => this.failed(new Error('connection ended')))
  }

  entry (identity: TokenIdentity): TokenStore {
    const key = entryKey(this.#prefix, identity)
    const lockKey = `${key}:lock`
    return {
      key,
      read: () => this.#call(async () => readReply(await this.#client.eval(READ, 1, key, String(STORE_BOUNDS.maxEntryBytes)))),
      set: async (value, ttlMs) => { await this.#call(() => this.#client.set(key, value, 'PX', ttlMs)) },
      lock: async (owner, ttlMs) => (await this.#call(() => this.#client.set(lockKey, owner, 'PX', ttlMs, 'NX'))) === 'OK',
      unlock: async (owner) => { await this.#call(() => this.#client.eval(UNLOCK, 1, lockKey, owner)) }
    }
  }

  health (): StoreHealth {
    if (this.#client.status === 'ready' && this.#failure === undefined) return { status: 'ok' }
    return { status: 'unavailable', reason: this.#failure ?? `not connected (${this.#client.status})` }
  }

  /** Records a failed call or connection: shown on /healthz, logged at most once a minute. */
  failed (err: unknown): void {
    if (this.#closed) return
    const { message, code } = err as { message?: unknown, code?: unknown }
    const reason = this.#scrub(typeof message === 'string' && message !== '' ? message : String(code ?? 'unknown error')).slice(0, 200)
    this.#failure = reason
    this.#startProbe()
    const now = performance.now()
    if (now - this.#lastLogAt < STORE_BOUNDS.logIntervalMs) return
    this.#lastLogAt = now
    this.#announced = true
    this.#log.warn({ event: 'token_store_unavailable', store: this.#where, reason }, 'token store unavailable: fetching tokens from the token endpoint directly')
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#stopProbe()
    this.#readyWait?.reject(new Error('token store closed'))
    this.#client.disconnect()
  }

  #recovered (event: 'token_store_ready' | 'token_store_recovered'): void {
    this.#failure = undefined
    this.#stopProbe()
    if (event === 'token_store_recovered' && !this.#announced) return
    this.#announced = false
    this.#log.info({ event, store: this.#where }, event === 'token_store_ready' ? 'token store connected' : 'token store reachable again')
  }

  /**
   * A call can fail on a connection that stays up (a paused or overloaded
   * server): probe it every second until it answers, so /healthz follows the
   * store back without waiting for the next token fetch.
   */
  #startProbe (): void {
    if (this.#probe !== undefined) return
    this.#probe = setInterval(() => {
      if (this.#client.status !== 'ready') return
      this.#client.ping().then(() => {
        if (this.#failure !== undefined && !this.#closed) this.#recovered('token_store_recovered')
      }, () => {})
    }, STORE_PROBE_INTERVAL_MS).unref()
  }

  #stopProbe (): void {
    clearInterval(this.#probe)
    this.#probe = undefined
  }

  /** Waits for the connection (longer the first time), then runs the call under the call bound. */
  async #call<T> (run: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error('token store closed')
    if (this.#client.status !== 'ready') await this.#ready()
    const result = await run()
    if (this.#failure !== undefined) this.#recovered('token_store_recovered')
    return result
  }

  #ready (): Promise<void> {
    if (this.#readyWait !== undefined) return this.#readyWait.promise
    const waitMs = this.#connected ? STORE_BOUNDS.callTimeoutMs : STORE_BOUNDS.firstConnectTimeoutMs
    let reject!: (err: Error) => void
    const promise = new Promise<void>((resolve, fail) => {
      const done = (): void => {
        clearTimeout(timer)
        this.#client.off('ready', onReady)
        this.#readyWait = undefined
      }
      const onReady = (): void => {
        done()
        resolve()
      }
      reject = (err) => {
        done()
        fail(err)
      }
      const timer = setTimeout(() => reject(new Error(`not connected (${this.#client.status}) after ${waitMs} ms`)), waitMs)
      this.#client.once('ready', onReady)
    })
    this.#readyWait = { promise, reject }
    return promise
  }
}

/** The READ script's answer as an EntryRead. */
function readReply (reply: unknown): EntryRead {
  const [head, size, ttlMs, storeNow] = (reply as unknown[]).map((value, i) => i === 0 ? String(value) : Number(value)) as [string, number, number, number]
  return { storeNow, entry: ttlMs === -2 ? undefined : { head, size, ttlMs } }
}
