import { createHash } from 'node:crypto'
import { Redis } from 'ioredis'
import type { StoreHealth } from '../engine/token-pool.js'
import type { EngineLogger } from '../engine/types.js'
import type { TokenStore } from './shared-transport.js'

/** Every store call is bounded by this: a slow store must never delay a token. */
export const STORE_CALL_TIMEOUT_MS = 500
/**
 * The first connection may take longer: at start-up, on a busy host, connecting
 * can outlast a call, and a sidecar that gives up then fetches a token of its
 * own instead of sharing the fleet's. A store that is down costs a start-up this once.
 */
export const STORE_FIRST_CONNECT_TIMEOUT_MS = 3000
/** `token_store_unavailable` is logged at most this often. */
export const STORE_LOG_INTERVAL_MS = 60_000

// Deletes the lock only if it still holds our owner id (a lock that expired and was taken by a peer stays).
const UNLOCK = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end"

/** What identifies a token: any difference is a different entry. */
export interface TokenIdentity {
  tokenUrl: string
  clientId: string
  audience: string
  organization: string | undefined
  scope: string | undefined
}

export interface RedisStoreOptions {
  url: URL
  prefix: string
  logger: EngineLogger
  /** Cleans error text before it is logged (the URL's password, the configured secrets). */
  scrub?: (text: string) => string
  callTimeoutMs?: number
  firstConnectTimeoutMs?: number
}

/**
 * The fleet's shared token store on a Redis-protocol server (Redis, Valkey,
 * Upstash) through ioredis, which owns the protocol, TLS (rediss://) and
 * reconnecting. Calls fail fast instead of queueing while it is unreachable.
 */
export class RedisTokenStore {
  readonly #client: Redis
  readonly #prefix: string
  readonly #log: EngineLogger
  readonly #scrub: (text: string) => string
  readonly #timeoutMs: number
  readonly #firstConnectMs: number
  readonly #where: string
  #connected = false
  #lastLogAt = -Infinity
  #failure: string | undefined
  #closed = false

  constructor (opts: RedisStoreOptions) {
    this.#prefix = opts.prefix
    this.#log = opts.logger
    this.#timeoutMs = opts.callTimeoutMs ?? STORE_CALL_TIMEOUT_MS
    this.#firstConnectMs = opts.firstConnectTimeoutMs ?? STORE_FIRST_CONNECT_TIMEOUT_MS
    const scrub = opts.scrub ?? ((text: string) => text)
    const password = decodeURIComponent(opts.url.password)
    this.#scrub = (text) => scrub(password === '' ? text : text.replaceAll(password, '[redacted]'))
    this.#where = `${opts.url.protocol}//${opts.url.host}`
    this.#client = new Redis(opts.url.href, {
      connectTimeout: this.#firstConnectMs,
      commandTimeout: this.#timeoutMs,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Reconnect for ever, backing off to 5 s: the store is an optimisation that comes back on its own.
      retryStrategy: (times) => Math.min(times * 250, 5000),
      // rediss://: TLS with Node's trust store (plus NODE_EXTRA_CA_CERTS) and host name checks.
      ...(opts.url.protocol === 'rediss:' ? { tls: {} } : {})
    })
    this.#client.on('error', (err: Error) => this.failed(err))
    this.#client.on('ready', () => {
      this.#connected = true
      const recovered = this.#failure !== undefined
      this.#failure = undefined
      this.#log.info({ event: recovered ? 'token_store_recovered' : 'token_store_ready', store: this.#where }, recovered ? 'token store reachable again' : 'token store connected')
    })
  }

  /** One entry and its lock; the key is a hash that reveals none of the identity. */
  entry (identity: TokenIdentity): TokenStore {
    const id = createHash('sha256')
      .update(JSON.stringify([identity.tokenUrl, identity.clientId, identity.audience, identity.organization ?? null, identity.scope ?? null]))
      .digest('hex')
    const key = `${this.#prefix}${id}`
    const lockKey = `${key}:lock`
    return {
      key,
      get: () => this.#call(() => this.#client.get(key)),
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
    const now = performance.now()
    if (now - this.#lastLogAt < STORE_LOG_INTERVAL_MS) return
    this.#lastLogAt = now
    this.#log.warn({ event: 'token_store_unavailable', store: this.#where, reason }, 'token store unavailable: fetching tokens from the token endpoint directly')
  }

  async close (): Promise<void> {
    this.#closed = true
    this.#client.disconnect()
  }

  /** Waits for the connection (longer the first time), then runs the call under the call bound. */
  async #call<T> (run: () => Promise<T>): Promise<T> {
    if (this.#client.status !== 'ready') await this.#ready()
    const result = await run()
    this.#failure = undefined
    return result
  }

  #ready (): Promise<void> {
    const waitMs = this.#connected ? this.#timeoutMs : this.#firstConnectMs
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#client.off('ready', onReady)
        reject(new Error(`not connected (${this.#client.status}) after ${waitMs} ms`))
      }, waitMs)
      const onReady = (): void => {
        clearTimeout(timer)
        resolve()
      }
      this.#client.once('ready', onReady)
    })
  }
}
