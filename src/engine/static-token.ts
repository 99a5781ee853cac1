import { TokenUnavailableError } from './errors.js'
import {
  type Clock,
  type EngineLogger,
  type HealthSnapshot,
  type ServedToken,
  type Serving,
  type Timers,
  type TokenSource
} from './types.js'
import { expiryMs, jwtExp } from '../jwt.js'
import { isoTime, systemClock, systemTimers } from './clock.js'
import { MAX_TIMER_MS, MIN_REMAINING_MS } from './schedule.js'

/** A static token cannot be renewed, so a client told to retry should not come back soon. */
const EXPIRED_RETRY_AFTER_SECONDS = 300

export interface StaticTokenOptions {
  token: string
  logger: EngineLogger
  /** Warn this long before a JWT's `exp`. */
  warnBeforeMs: number
  clock?: Clock
  timers?: Timers
}

/** Static mode: serves TOOLBRIDGE_JWT_TOKEN as it is, honouring a JWT's expiry. */
export class StaticToken implements TokenSource {
  readonly mode = 'static' as const
  readonly #token: ServedToken
  readonly #log: EngineLogger
  readonly #warnBeforeMs: number
  readonly #clock: Clock
  readonly #timers: Timers
  #timer: unknown
  #warned = false
  #serving: Serving | undefined

  /** Throws a RangeError for an `exp` no Date can hold; configuration checks that first. */
  constructor (opts: StaticTokenOptions) {
    const exp = jwtExp(opts.token)
    const expiresAt = exp === undefined ? null : expiryMs(exp) ?? null
    if (exp !== undefined && expiresAt === null) throw new RangeError('the static token\'s exp claim is out of range')
    this.#token = {
      accessToken: opts.token,
      expiresAt,
      expiresAtIso: expiresAt === null ? null : isoTime(expiresAt),
      deadline: null
    }
    this.#log = opts.logger
    this.#warnBeforeMs = opts.warnBeforeMs
    this.#clock = opts.clock ?? systemClock
    this.#timers = opts.timers ?? systemTimers
  }

  start (): void {
    this.#log.warn({
      event: 'static_token_deprecated',
      expires_at: this.#token.expiresAtIso
    }, 'TOOLBRIDGE_JWT_TOKEN is deprecated: serving a static token that is never refreshed; set TOOLBRIDGE_AUTH0_CLIENT_ID and TOOLBRIDGE_AUTH0_CLIENT_SECRET instead')
    if (this.#token.expiresAt === null) return
    this.#watch()
  }

  current (): ServedToken | undefined {
    return this.serving()?.token
  }

  serving (): Serving | undefined {
    const { expiresAt } = this.#token
    const left = expiresAt === null ? null : expiresAt - this.#clock.now()
    if (left !== null && left < MIN_REMAINING_MS) return undefined
    const expiresIn = left === null ? null : Math.floor(left / 1000)
    if (this.#serving?.expiresIn !== expiresIn) this.#serving = { token: this.#token, expiresIn }
    return this.#serving
  }

  async token (): Promise<ServedToken> {
    const token = this.current()
    if (token !== undefined) return token
    throw new TokenUnavailableError(
      `the static TOOLBRIDGE_JWT_TOKEN expired at ${this.#token.expiresAtIso}; it cannot be refreshed`,
      EXPIRED_RETRY_AFTER_SECONDS
    )
  }

  forceRefresh (): Promise<ServedToken> {
    return this.token()
  }

  stop (): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  health (): HealthSnapshot {
    const token = this.current()
    const { expiresAt, expiresAtIso } = this.#token
    return {
      status: token === undefined ? 'unavailable' : 'ok',
      mode: this.mode,
      token: token === undefined
        ? null
        : { expires_at: expiresAtIso, expires_in: expiresAt === null ? null : Math.floor((expiresAt - this.#clock.now()) / 1000) },
      last_refresh: null,
      next_refresh_at: null
    }
  }

  async close (): Promise<void> {
    this.stop()
  }

  /** Logs once as expiry nears and once when it passes; wakes in capped steps for far-off expiries. */
  #watch (): void {
    const expiresAt = this.#token.expiresAt!
    const now = this.#clock.now()
    const fields = { mode: this.mode, expires_at: this.#token.expiresAtIso }
    if (now >= expiresAt) {
      this.#log.error({ event: 'token_expired', ...fields }, 'the static TOOLBRIDGE_JWT_TOKEN has expired: /token and /healthz answer 503 until the sidecar is reconfigured')
      return
    }
    if (!this.#warned && now >= expiresAt - this.#warnBeforeMs) {
      this.#warned = true
      this.#log.warn({ event: 'token_expiring', ...fields, expires_in: Math.floor((expiresAt - now) / 1000) }, 'the static TOOLBRIDGE_JWT_TOKEN expires soon and cannot be refreshed')
    }
    const wakeAt = this.#warned ? expiresAt : expiresAt - this.#warnBeforeMs
    this.#timer = this.#timers.setTimeout(() => this.#watch(), Math.min(wakeAt - now, MAX_TIMER_MS))
  }
}
