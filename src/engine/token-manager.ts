import { asTokenRequestError, TokenUnavailableError, type TokenRequestError } from './errors.js'
import { backoffDelayMs, MAX_TIMER_MS, refreshDelayMs } from './schedule.js'
import {
  systemClock,
  systemTimers,
  type Clock,
  type EngineLogger,
  type HealthSnapshot,
  type LastRefresh,
  type RefreshObserver,
  type RefreshTrigger,
  type ServedToken,
  type Timers,
  type TokenSource,
  type TokenTransport
} from './types.js'

/** A token with less than this left is treated as expired: the caller could not use it in time. */
export const MIN_REMAINING_MS = 1_000
/** POST /token/refresh hands back a token this young instead of fetching again. */
export const FORCED_REFRESH_MIN_AGE_MS = 10_000
/** Warn this long before the held token expires when no refresh has succeeded since it was fetched. */
export const EXPIRY_WARNING_MS = 60_000

export interface TokenManagerOptions {
  transport: TokenTransport
  logger: EngineLogger
  refreshBufferMs: number
  /** Non-secret facts for the start-up log line (domain, audience, client id). */
  describe?: Record<string, unknown>
  observer?: RefreshObserver
  clock?: Clock
  timers?: Timers
  random?: () => number
}

interface HeldToken extends ServedToken {
  readonly expiresAt: number
  readonly obtainedAt: number
  readonly lifetimeMs: number
}

/**
 * Auto-refresh mode: owns the current token, refreshes it on a timer ahead
 * of expiry, retries failures with backoff, and never runs two upstream
 * requests at once.
 */
export class TokenManager implements TokenSource {
  readonly mode = 'auto-refresh' as const
  readonly #transport: TokenTransport
  readonly #log: EngineLogger
  readonly #bufferMs: number
  readonly #describe: Record<string, unknown>
  readonly #observer: RefreshObserver | undefined
  readonly #clock: Clock
  readonly #timers: Timers
  readonly #random: () => number
  readonly #closing = new AbortController()

  #token: HeldToken | undefined
  #inflight: Promise<void> | undefined
  #timer: unknown
  #expiryWarning: unknown
  #warnedFor: HeldToken | undefined
  /** Until then the upstream asked us (Retry-After) not to call again. */
  #holdUntil = 0
  #nextAttemptAt: number | undefined
  #nextTrigger: RefreshTrigger = 'timer'
  #failures = 0
  #last: LastRefresh | null = null

  constructor (opts: TokenManagerOptions) {
    this.#transport = opts.transport
    this.#log = opts.logger
    this.#bufferMs = opts.refreshBufferMs
    this.#describe = opts.describe ?? {}
    this.#observer = opts.observer
    this.#clock = opts.clock ?? systemClock
    this.#timers = opts.timers ?? systemTimers
    this.#random = opts.random ?? Math.random
  }

  start (): void {
    this.#log.info({
      event: 'token_manager_initialized',
      ...this.#describe,
      refresh_buffer_seconds: this.#bufferMs / 1000
    }, 'Auth0 token manager initialized')
    void this.#refresh('startup')
  }

  current (): ServedToken | undefined {
    const token = this.#token
    if (token !== undefined && token.expiresAt - this.#clock.now() >= MIN_REMAINING_MS) return token
    return undefined
  }

  async token (): Promise<ServedToken> {
    const held = this.current()
    if (held !== undefined) return held
    // The transport bounds every request by the upstream timeout, so this wait is bounded too.
    if (this.#inflight !== undefined) await this.#inflight
    return this.current() ?? this.#unavailable()
  }

  async forceRefresh (): Promise<ServedToken> {
    const held = this.current()
    if (held !== undefined && this.#clock.now() - this.#token!.obtainedAt < FORCED_REFRESH_MIN_AGE_MS) {
      return held
    }
    // During backoff the upstream asked us to wait (or is failing): a client's 401 is no reason to hammer it.
    const backingOff = this.#failures > 0 && this.#nextAttemptAt !== undefined && this.#nextAttemptAt > this.#clock.now()
    if (!backingOff || this.#inflight !== undefined) await this.#refresh('forced')
    return this.token()
  }

  /**
   * Fetches at once whatever the token's age, e.g. to prove a rotated client
   * secret; still never sooner than a Retry-After allows. Resolves either way:
   * a failure keeps the current token and schedules a retry.
   */
  async refreshNow (): Promise<void> {
    if (this.#holdUntil > this.#clock.now()) return
    await this.#refresh('forced')
  }

  health (): HealthSnapshot {
    const now = this.#clock.now()
    const held = this.current()
    const nextRefreshAt = this.#nextAttemptAt === undefined ? null : new Date(this.#nextAttemptAt).toISOString()
    if (held === undefined) {
      return { status: 'unavailable', mode: this.mode, token: null, last_refresh: this.#last, next_refresh_at: nextRefreshAt }
    }
    return {
      status: this.#last?.result === 'failure' ? 'degraded' : 'ok',
      mode: this.mode,
      token: { expires_at: held.expiresAtIso, expires_in: Math.floor((this.#token!.expiresAt - now) / 1000) },
      last_refresh: this.#last,
      next_refresh_at: nextRefreshAt
    }
  }

  /** Stops the timer, aborts an in-flight request, then releases the transport, in that order. */
  async close (): Promise<void> {
    this.#clearTimer()
    this.#clearExpiryWarning()
    this.#closing.abort()
    await this.#transport.close?.()
  }

  #refresh (trigger: RefreshTrigger): Promise<void> {
    if (this.#inflight !== undefined) return this.#inflight
    if (this.#closing.signal.aborted) return Promise.resolve()
    this.#clearTimer()
    this.#nextAttemptAt = undefined
    const attempt = this.#attempt(trigger).finally(() => { this.#inflight = undefined })
    this.#inflight = attempt
    return attempt
  }

  async #attempt (trigger: RefreshTrigger): Promise<void> {
    const attempt = this.#failures + 1
    // Expiry counts from when we asked, not when the answer arrived: the conservative side.
    const startedAt = this.#clock.now()
    try {
      const fetched = await this.#transport.fetchToken(this.#closing.signal)
      if (this.#closing.signal.aborted) return
      this.#observer?.attempt({ trigger, result: 'success', durationMs: this.#clock.now() - startedAt, lifetimeSeconds: fetched.expiresInSeconds })
      this.#clearExpiryWarning()
      this.#holdUntil = 0
      const lifetimeMs = fetched.expiresInSeconds * 1000
      const expiresAt = startedAt + lifetimeMs
      const expiresAtIso = new Date(expiresAt).toISOString()
      this.#token = { accessToken: fetched.accessToken, expiresAt, expiresAtIso, obtainedAt: startedAt, lifetimeMs }
      this.#failures = 0
      this.#last = { at: new Date(this.#clock.now()).toISOString(), trigger, result: 'success', attempt }
      this.#log.info({
        event: 'token_refreshed',
        trigger,
        attempt,
        expires_at: expiresAtIso,
        expires_in: fetched.expiresInSeconds
      }, 'Auth0 token refreshed')
      this.#schedule(refreshDelayMs(lifetimeMs, this.#bufferMs, this.#random), 'timer')
    } catch (err) {
      if (this.#closing.signal.aborted) return
      const failure = asTokenRequestError(err)
      this.#observer?.attempt({ trigger, result: failure.kind, durationMs: this.#clock.now() - startedAt })
      this.#onFailure(failure, trigger, attempt)
    }
  }

  #onFailure (err: TokenRequestError, trigger: RefreshTrigger, attempt: number): void {
    this.#failures = attempt
    const configError = err.kind === 'config_error'
    const retryInMs = backoffDelayMs(attempt, this.#random, err.retryAfterMs, configError)
    this.#holdUntil = err.retryAfterMs === undefined ? 0 : this.#clock.now() + err.retryAfterMs
    this.#last = {
      at: new Date(this.#clock.now()).toISOString(),
      trigger,
      result: 'failure',
      attempt,
      error: err.auth0Error ?? err.code,
      error_kind: err.kind,
      ...(err.status === undefined ? {} : { status: err.status })
    }
    const fields = {
      event: 'token_refresh_failed',
      trigger,
      attempt,
      error_kind: err.kind,
      code: err.code,
      status: err.status,
      error: err.auth0Error,
      error_description: err.auth0Description,
      retry_in_ms: retryInMs,
      token_expires_at: this.current()?.expiresAtIso ?? null
    }
    if (configError) {
      this.#log.error(fields, `Auth0 token refresh failed: configuration error: ${err.message}`)
    } else {
      this.#log.warn(fields, `Auth0 token refresh failed: ${err.message}`)
    }
    this.#schedule(retryInMs, 'retry')
    this.#watchExpiry()
  }

  /** While refreshes fail, warn once as the held token comes within a minute of expiry. */
  #watchExpiry (): void {
    const token = this.#token
    if (token === undefined || this.#expiryWarning !== undefined || this.#warnedFor === token) return
    const warnInMs = token.expiresAt - EXPIRY_WARNING_MS - this.#clock.now()
    this.#expiryWarning = this.#timers.setTimeout(() => {
      this.#expiryWarning = undefined
      if (token.expiresAt <= this.#clock.now()) return
      if (token.expiresAt - EXPIRY_WARNING_MS > this.#clock.now()) {
        this.#watchExpiry()
        return
      }
      this.#warnedFor = token
      this.#log.warn({
        event: 'token_expiring',
        expires_at: token.expiresAtIso,
        expires_in: Math.max(0, Math.floor((token.expiresAt - this.#clock.now()) / 1000)),
        attempt: this.#failures,
        retry_in_ms: this.#nextAttemptAt === undefined ? null : Math.max(0, this.#nextAttemptAt - this.#clock.now())
      }, 'the held token expires within a minute and no refresh has succeeded')
    }, Math.max(0, Math.min(warnInMs, MAX_TIMER_MS)))
  }

  #clearExpiryWarning (): void {
    if (this.#expiryWarning !== undefined) this.#timers.clearTimeout(this.#expiryWarning)
    this.#expiryWarning = undefined
  }

  #schedule (delayMs: number, trigger: RefreshTrigger): void {
    this.#clearTimer()
    this.#nextAttemptAt = this.#clock.now() + delayMs
    this.#nextTrigger = trigger
    this.#arm()
  }

  /** Re-arms in steps of at most MAX_TIMER_MS so 30-day lifetimes schedule correctly. */
  #arm (): void {
    const remaining = this.#nextAttemptAt! - this.#clock.now()
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined
      if (this.#nextAttemptAt! > this.#clock.now()) this.#arm()
      else void this.#refresh(this.#nextTrigger)
    }, Math.max(0, Math.min(remaining, MAX_TIMER_MS)))
  }

  #clearTimer (): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #unavailable (): never {
    const now = this.#clock.now()
    const waitMs = this.#nextAttemptAt !== undefined && this.#nextAttemptAt > now ? this.#nextAttemptAt - now : 1000
    const reason = this.#last?.result === 'failure'
      ? `the latest token refresh failed (${String(this.#last.error)}); next attempt in ${Math.ceil(waitMs / 1000)} s`
      : 'no token has been obtained yet'
    throw new TokenUnavailableError(reason, waitMs / 1000)
  }
}
