import type { HealthSnapshot, TokenSource } from './types.js'

/** /healthz: the default audience's fields at the top, as before several audiences, and every audience below. */
export interface PoolHealth extends HealthSnapshot {
  /** The default audience, which the top-level fields describe. */
  audience: string
  audiences: Record<string, HealthSnapshot>
  /** Configured audiences with no servable token: any makes /healthz answer 503. */
  unavailable_audiences: string[]
  /** The fleet's shared token store, when one is configured. */
  token_store?: ComponentHealth
}

/** A component the sources depend on but can do without (the shared store): while it is unavailable, `degraded`. */
export interface ComponentHealth {
  status: 'ok' | 'unavailable'
  reason?: string
}

export interface TokenPoolOptions {
  /** Runs after every source closed, e.g. to release a connection pool they share. */
  onClose?: () => Promise<void>
  storeHealth?: () => ComponentHealth
}

/**
 * One token source per configured audience, each with its own token, timer,
 * backoff, forced-refresh rule and single flight, so one failing audience
 * never holds up another. The first audience is the default.
 */
export class TokenPool {
  readonly audiences: readonly string[]
  readonly defaultAudience: string
  readonly default: TokenSource
  readonly #sources: ReadonlyMap<string, TokenSource>
  readonly #onClose: (() => Promise<void>) | undefined
  readonly #storeHealth: (() => ComponentHealth) | undefined

  constructor (sources: ReadonlyArray<readonly [audience: string, source: TokenSource]>, opts: TokenPoolOptions = {}) {
    const first = sources[0]
    if (first === undefined) throw new TypeError('a token pool needs at least one audience')
    this.#sources = new Map(sources)
    this.audiences = Object.freeze([...this.#sources.keys()])
    this.defaultAudience = first[0]
    this.default = first[1]
    this.#onClose = opts.onClose
    this.#storeHealth = opts.storeHealth
  }

  /** The source of a configured audience, else undefined. */
  get (audience: string): TokenSource | undefined {
    return this.#sources.get(audience)
  }

  start (): void {
    for (const source of this.#sources.values()) source.start()
  }

  stop (): void {
    for (const source of this.#sources.values()) source.stop()
  }

  async close (): Promise<void> {
    await Promise.all([...this.#sources.values()].map((source) => source.close()))
    await this.#onClose?.()
  }

  health (): PoolHealth {
    const audiences: Record<string, HealthSnapshot> = {}
    const unavailable: string[] = []
    for (const [audience, source] of this.#sources) {
      const health = source.health()
      audiences[audience] = health
      if (health.status === 'unavailable') unavailable.push(audience)
    }
    const health: PoolHealth = { ...audiences[this.defaultAudience]!, audience: this.defaultAudience, audiences, unavailable_audiences: unavailable }
    if (this.#storeHealth !== undefined) {
      health.token_store = this.#storeHealth()
      // Tokens are still served (fetched directly), but the fleet is spending more of them than it should.
      if (health.token_store.status !== 'ok' && health.status === 'ok') health.status = 'degraded'
    }
    return health
  }
}
