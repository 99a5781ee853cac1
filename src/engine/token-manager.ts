import { createHash } from 'node:crypto'
import { asTokenRequestError, TokenUnavailableError, type TokenRequestError } from './errors.js'
import {
  backoffDelayMs,
  CLOCK_POLICY,
  DEFAULT_REFRESH_BUDGET_PER_HOUR,
  forcedSpacingMs,
  MAX_TIMER_MS,
  MIN_REMAINING_MS,
  REFRESH_POLICY,
  refreshDelayMs,
  UPSTREAM_BOUNDS
} from './schedule.js'
import {
  type Clock,
  type EngineLogger,
  type ForcedRefusal,
  type HealthSnapshot,
  type LastRefresh,
  type RefreshObserver,
  type RefreshTrigger,
  type ServedToken,
  type Serving,
  type Timers,
  type TokenSource,
  type TokenTransport
} from './types.js'
import { isoTime, remainingMs, systemClock, systemTimers } from './clock.js'

/** Warn this long before the held token expires when no refresh has succeeded since it was fetched. */
export const EXPIRY_WARNING_MS = 60_000

export interface TokenManagerOptions {
  transport: TokenTransport
  logger: EngineLogger
  refreshBufferMs: number
  /** Non-secret facts for the start-up log line (domain, client id); the audience comes with the logger. */
  describe?: Record<string, unknown>
  observer?: RefreshObserver
  /** Warn once when an issued lifetime means more refreshes an hour than this (TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR). */
  refreshBudgetPerHour?: number
  /**
   * The longest a request waits for an in-flight fetch before it is answered
   * 503: the fetch's own bound (upstream timeout, plus the store phase with a
   * shared store), enforced here too. Unset: as long as the fetch takes.
   */
  waitLimitMs?: number
  clock?: Clock
  timers?: Timers
  random?: () => number
}

interface HeldToken extends ServedToken {
  readonly expiresAt: number
  readonly deadline: number
  /** Monotonic ms at which the request that obtained it was sent. */
  readonly obtainedAt: number
  sha256?: string
}

/**
 * Auto-refresh mode: owns the current token, refreshes it on a timer ahead
 * of expiry, retries failures with backoff, and never runs two upstream
 * requests at once. Deadlines and timers run on monotonic time; a token is
 * served only while wall time agrees it has not expired.
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
  readonly #budgetPerHour: number
  readonly #waitLimitMs: number | undefined
  readonly #closing = new AbortController()

  #token: HeldToken | undefined
  #serving: Serving | undefined
  #inflight: Promise<void> | undefined
  #timer: unknown
  #clockCheck: unknown
  #expiryWarning: unknown
  #warnedFor: HeldToken | undefined
  /** Monotonic ms until which the upstream asked us (Retry-After) not to call again. */
  #holdUntil = 0
  /** Monotonic ms of the next scheduled attempt. */
  #nextAttemptAt: number | undefined
  #nextTrigger: RefreshTrigger = 'timer'
  #failures = 0
  #last: LastRefresh | null = null
  /** Wall minus monotonic time at the last clock check; a change is a wall-clock step. */
  #offset: number
  /** Forced fetches since the last timer refresh succeeded, and when the latest started. */
  #forcedStreak = 0
  #lastForcedAt = -Infinity
  /** Requested scopes the latest upstream token came without; logged once per change. */
  #missingScopes: readonly string[] | undefined
  /** Monotonic ms of the last `clock_jump` warning, and the steps logged at debug since. */
  #lastJumpWarnAt = -Infinity
  #quietJumps = 0
  #budgetWarned = false

  constructor (opts: TokenManagerOptions) {
    this.#transport = opts.transport
    this.#log = opts.logger
    this.#bufferMs = opts.refreshBufferMs
    this.#describe = opts.describe ?? {}
    this.#observer = opts.observer
    this.#clock = opts.clock ?? systemClock
    this.#timers = opts.timers ?? systemTimers
    this.#random = opts.random ?? Math.random
    this.#budgetPerHour = opts.refreshBudgetPerHour ?? DEFAULT_REFRESH_BUDGET_PER_HOUR
    this.#waitLimitMs = opts.waitLimitMs
    this.#offset = this.#clock.now() - this.#clock.monotonic()
  }

  start (): void {
    this.#log.info({
      event: 'token_manager_initialized',
      ...this.#describe,
      refresh_buffer_seconds: this.#bufferMs / 1000
    }, 'Auth0 token manager initialized')
    // Requests notice a step too (current()); this catches one while nobody asks.
    this.#clockCheck = this.#timers.setInterval(() => this.#checkClock(), CLOCK_POLICY.checkIntervalMs)
    void this.#refresh('startup')
  }

  current (): ServedToken | undefined {
    return this.serving()?.token
  }

  serving (): Serving | undefined {
    const token = this.#token
    if (token === undefined) return undefined
    const now = this.#clock.now()
    const mono = this.#clock.monotonic()
    if (Math.abs(now - mono - this.#offset) > CLOCK_POLICY.jumpThresholdMs) this.#checkClock()
    const left = Math.min(token.deadline - mono, token.expiresAt - now)
    if (left < MIN_REMAINING_MS) return undefined
    const expiresIn = Math.floor(left / 1000)
    const last = this.#serving
    if (last !== undefined && last.token === token && last.expiresIn === expiresIn) return last
    this.#serving = { token, expiresIn }
    return this.#serving
  }

  async token (): Promise<ServedToken> {
    const held = this.current()
    if (held !== undefined) return held
    // The transport bounds every request, and the wait limit holds that bound here too.
    if (this.#inflight !== undefined) await this.#bounded(this.#inflight)
    return this.current() ?? this.#unavailable()
  }

  /** Waits for the fetch, at most the wait limit. */
  async #bounded (inflight: Promise<void>): Promise<void> {
    const limit = this.#waitLimitMs
    if (limit === undefined) return await inflight
    let timer: unknown
    try {
      await Promise.race([inflight, new Promise<void>((resolve) => { timer = this.#timers.setTimeout(resolve, limit) })])
    } finally {
      this.#timers.clearTimeout(timer)
    }
  }

  async forceRefresh (rejectedSha256?: string): Promise<ServedToken> {
    const held = this.current()
    if (held !== undefined && rejectedSha256 !== undefined && rejectedSha256.toLowerCase() !== this.#sha256(this.#token!)) {
      return this.#refused('not_current', held)
    }
    if (this.#inflight !== undefined) {
      await this.#inflight
      return this.token()
    }
    // During backoff the upstream asked us to wait (or is failing): a client's 401 is no reason to hammer it.
    if (this.#backingOff()) return held === undefined ? this.token() : this.#refused('backoff', held)
    if (held !== undefined) {
      const mono = this.#clock.monotonic()
      const since = Math.max(this.#token!.obtainedAt, this.#lastForcedAt)
      if (mono - since < forcedSpacingMs(this.#forcedStreak)) return this.#refused('too_soon', held)
      this.#forcedStreak++
      this.#lastForcedAt = mono
    }
    await this.#refresh('forced')
    return this.token()
  }

  /**
   * Fetches at once whatever the token's age or the forced-refresh spacing,
   * to prove a rotated client secret; still never sooner than a Retry-After
   * allows. A fetch already in flight carries the old secret, so another one
   * follows it. Resolves either way: a failure keeps the current token and
   * schedules a retry.
   */
  async refreshNow (): Promise<void> {
    if (this.#inflight !== undefined) await this.#inflight
    if (this.#holdUntil > this.#clock.monotonic()) return
    await this.#refresh('forced')
  }

  health (): HealthSnapshot {
    const serving = this.serving()
    const nextRefreshAt = this.#nextAttemptAt === undefined ? null : this.#wallTime(this.#nextAttemptAt)
    const scopes = this.#missingScopes === undefined ? {} : { missing_scopes: this.#missingScopes }
    if (serving === undefined) {
      return { status: 'unavailable', mode: this.mode, token: null, last_refresh: this.#last, next_refresh_at: nextRefreshAt, ...scopes }
    }
    return {
      status: this.#last?.result === 'failure' ? 'degraded' : 'ok',
      mode: this.mode,
      token: { expires_at: serving.token.expiresAtIso, expires_in: serving.expiresIn },
      last_refresh: this.#last,
      next_refresh_at: nextRefreshAt,
      ...scopes
    }
  }

  /** Stops the timers and aborts an in-flight request: its waiters are answered at once. */
  stop (): void {
    this.#clearTimer()
    this.#clearExpiryWarning()
    if (this.#clockCheck !== undefined) this.#timers.clearInterval(this.#clockCheck)
    this.#clockCheck = undefined
    this.#closing.abort()
  }

  /** Stops, then releases the transport, in that order. */
  async close (): Promise<void> {
    this.stop()
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
    const startedAt = this.#clock.monotonic()
    // A fetch for a clock step spends quota as a forced one does, and is spaced with them.
    if (trigger === 'clock_jump') {
      this.#forcedStreak++
      this.#lastForcedAt = startedAt
    }
    try {
      const fetched = await this.#transport.fetchToken(this.#closing.signal)
      if (this.#closing.signal.aborted) return
      const elapsed = this.#clock.monotonic() - startedAt
      const source = fetched.source ?? 'upstream'
      this.#observer?.attempt({ trigger, result: 'success', durationMs: elapsed, lifetimeSeconds: fetched.expiresInSeconds, source })
      this.#clearExpiryWarning()
      this.#holdUntil = 0
      const lifetimeMs = fetched.expiresInSeconds * 1000
      // Wall expiry from the wall clock as it reads now, so a step during the request does not skew it.
      const expiresAt = this.#clock.now() - elapsed + lifetimeMs
      const expiresAtIso = isoTime(expiresAt)
      this.#token = { accessToken: fetched.accessToken, expiresAt, expiresAtIso, deadline: startedAt + lifetimeMs, obtainedAt: startedAt }
      this.#failures = 0
      if (trigger === 'timer') this.#forcedStreak = 0
      this.#last = { at: this.#wallTime(this.#clock.monotonic())!, trigger, result: 'success', attempt }
      this.#log.info({
        event: 'token_refreshed',
        trigger,
        attempt,
        expires_at: expiresAtIso,
        expires_in: fetched.expiresInSeconds,
        ...(source === 'store' ? { source } : {})
      }, source === 'store' ? 'token adopted from the shared store' : 'Auth0 token refreshed')
      // An adopted token says nothing about the grant: the peer that fetched it warned.
      if (source === 'upstream') this.#grantedScope(fetched.missingScopes)
      const { maxScheduledLifetimeMs } = REFRESH_POLICY
      if (lifetimeMs > maxScheduledLifetimeMs) {
        this.#log.warn({
          event: 'token_lifetime_capped',
          expires_in: fetched.expiresInSeconds,
          scheduled_lifetime_seconds: maxScheduledLifetimeMs / 1000
        }, 'the token endpoint granted a lifetime beyond Auth0\'s 30-day maximum: serving the token, refreshing it as if it lived 30 days')
      }
      const delayMs = refreshDelayMs(Math.min(lifetimeMs, maxScheduledLifetimeMs), this.#bufferMs, this.#random)
      this.#schedule(delayMs, 'timer')
      this.#checkBudget(delayMs, fetched.expiresInSeconds, source)
    } catch (err) {
      if (this.#closing.signal.aborted) return
      const failure = asTokenRequestError(err)
      this.#observer?.attempt({ trigger, result: failure.kind, durationMs: this.#clock.monotonic() - startedAt })
      this.#onFailure(failure, trigger, attempt)
    }
  }

  #grantedScope (missing: readonly string[] | undefined): void {
    if (missing !== undefined && missing.join(' ') !== this.#missingScopes?.join(' ')) {
      this.#log.warn({
        event: 'scope_narrowed',
        missing_scopes: missing
      }, `the token endpoint granted less than the requested scope, without: ${missing.join(' ')}`)
    }
    this.#missingScopes = missing
  }

  /** Reports the refresh rate the schedule amounts to, and warns once when an issued lifetime makes it exceed the budget. */
  #checkBudget (delayMs: number, expiresInSeconds: number, source: 'upstream' | 'store'): void {
    const perHour = 3_600_000 / Math.max(delayMs, 1)
    this.#observer?.refreshRate?.(perHour)
    // An adopted token's remaining lifetime is no issued lifetime: only the token endpoint's answer counts.
    if (source !== 'upstream' || perHour <= this.#budgetPerHour || this.#budgetWarned) return
    this.#budgetWarned = true
    this.#log.warn({
      event: 'refresh_budget_exceeded',
      expires_in: expiresInSeconds,
      refreshes_per_hour: Math.round(perHour),
      budget_per_hour: this.#budgetPerHour
    }, `the token endpoint issues ${expiresInSeconds}-s tokens: about ${Math.round(perHour)} refreshes an hour for this audience, above the budget of ${this.#budgetPerHour} (TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR); raise the token lifetime at the issuer`)
  }

  #onFailure (err: TokenRequestError, trigger: RefreshTrigger, attempt: number): void {
    this.#failures = attempt
    const configError = err.kind === 'config_error'
    const retryInMs = backoffDelayMs(attempt, this.#random, err.retryAfterMs, configError)
    const mono = this.#clock.monotonic()
    this.#holdUntil = err.retryAfterMs === undefined ? 0 : mono + Math.min(err.retryAfterMs, UPSTREAM_BOUNDS.maxRetryAfterMs)
    if (err.retryAfterCapped !== undefined) {
      this.#log.warn({
        event: 'retry_after_capped',
        retry_after: err.retryAfterCapped,
        retry_in_ms: retryInMs
      }, `the token endpoint asked us to wait ${err.retryAfterCapped}; waiting at most an hour instead`)
    }
    this.#last = {
      at: this.#wallTime(mono)!,
      trigger,
      result: 'failure',
      attempt,
      error: err.auth0Error ?? err.code,
      error_kind: err.kind,
      ...(err.status === undefined ? {} : { status: err.status }),
      ...(err.hint === undefined ? {} : { hint: err.hint })
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
      body_excerpt: err.bodyExcerpt,
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

  /**
   * Compares wall and monotonic time. After a step beyond the threshold both
   * expiries are made to agree again. A backward step needs no fetch: the
   * monotonic deadline and timer still hold. A forward step may be a resume
   * from suspend, which monotonic time did not count: the token is held to
   * what the wall clock says is left, the refresh moves earlier by the step,
   * and a fetch starts only when that makes it due (or nothing is servable),
   * spaced as forced fetches are. Warnings are rate-limited.
   */
  #checkClock (): void {
    const now = this.#clock.now()
    const mono = this.#clock.monotonic()
    const stepMs = (now - mono) - this.#offset
    this.#offset = now - mono
    if (Math.abs(stepMs) <= CLOCK_POLICY.jumpThresholdMs || this.#closing.signal.aborted) return
    const token = this.#token
    if (token !== undefined) {
      const rebased = stepMs < 0
        ? { expiresAt: now + (token.deadline - mono), deadline: token.deadline }
        : { expiresAt: token.expiresAt, deadline: Math.min(token.deadline, mono + (token.expiresAt - now)) }
      this.#token = { ...token, ...rebased, expiresAtIso: isoTime(rebased.expiresAt) }
    }
    this.#logJump(stepMs, stepMs < 0 ? 'none' : this.#afterForwardStep(stepMs, mono))
  }

  /** What a forward step calls for, done. */
  #afterForwardStep (stepMs: number, mono: number): string {
    if (this.#backingOff() || this.#holdUntil > mono) return 'wait_for_scheduled_retry'
    if (this.#inflight !== undefined) return 'join_refresh'
    const token = this.#token
    const servable = token !== undefined && Math.min(token.deadline - mono, token.expiresAt - this.#clock.now()) >= MIN_REMAINING_MS
    // A spaced fetch for an earlier step is already set: the spacing holds.
    if (servable && this.#nextTrigger === 'clock_jump' && this.#nextAttemptAt !== undefined) return 'refresh_spaced'
    // Some attempt is always scheduled while none is in flight (joined above).
    const dueAt = this.#nextAttemptAt! - stepMs
    if (servable && dueAt > mono) {
      this.#schedule(dueAt - mono, this.#nextTrigger)
      return 'reschedule'
    }
    const allowedAt = servable ? Math.max(token.obtainedAt, this.#lastForcedAt) + forcedSpacingMs(this.#forcedStreak) : mono
    if (allowedAt > mono) {
      this.#schedule(allowedAt - mono, 'clock_jump')
      return 'refresh_spaced'
    }
    void this.#refresh('clock_jump')
    return 'refresh'
  }

  #logJump (stepMs: number, action: string): void {
    const mono = this.#clock.monotonic()
    const fields = {
      event: 'clock_jump',
      step_ms: Math.round(stepMs),
      direction: stepMs > 0 ? 'forward' : 'backward',
      action
    }
    const msg = `the wall clock stepped ${stepMs > 0 ? 'forward' : 'back'} by ${Math.round(Math.abs(stepMs) / 1000)} s`
    if (mono - this.#lastJumpWarnAt < CLOCK_POLICY.warnIntervalMs) {
      this.#quietJumps++
      this.#log.debug(fields, msg)
      return
    }
    this.#lastJumpWarnAt = mono
    const suppressed = this.#quietJumps
    this.#quietJumps = 0
    this.#log.warn(suppressed === 0 ? fields : { ...fields, steps_since_last_warning: suppressed }, msg)
  }

  #backingOff (): boolean {
    return this.#failures > 0 && this.#nextAttemptAt !== undefined && this.#nextAttemptAt > this.#clock.monotonic()
  }

  #refused (reason: ForcedRefusal, held: ServedToken): ServedToken {
    this.#observer?.forcedRefused?.(reason)
    return held
  }

  #sha256 (token: HeldToken): string {
    token.sha256 ??= createHash('sha256').update(token.accessToken).digest('hex')
    return token.sha256
  }

  #remainingMs (token: HeldToken): number {
    // A held token has both a wall expiry and a monotonic deadline, so this is never null.
    return remainingMs(token, this.#clock)!
  }

  /** The wall time at a monotonic instant, as ISO text. */
  #wallTime (mono: number): string | null {
    return isoTime(this.#clock.now() + (mono - this.#clock.monotonic()))
  }

  /** While refreshes fail, warn once as the held token comes within a minute of expiry. */
  #watchExpiry (): void {
    const token = this.#token
    if (token === undefined || this.#expiryWarning !== undefined || this.#warnedFor === token) return
    const warnInMs = this.#remainingMs(token) - EXPIRY_WARNING_MS
    this.#expiryWarning = this.#timers.setTimeout(() => {
      this.#expiryWarning = undefined
      const remaining = this.#remainingMs(token)
      if (remaining <= 0) return
      if (remaining > EXPIRY_WARNING_MS) {
        this.#watchExpiry()
        return
      }
      this.#warnedFor = token
      this.#log.warn({
        event: 'token_expiring',
        expires_at: token.expiresAtIso,
        expires_in: Math.floor(remaining / 1000),
        attempt: this.#failures,
        retry_in_ms: this.#nextAttemptAt === undefined ? null : Math.max(0, this.#nextAttemptAt - this.#clock.monotonic())
      }, 'the held token expires within a minute and no refresh has succeeded')
    }, Math.max(0, Math.min(warnInMs, MAX_TIMER_MS)))
  }

  #clearExpiryWarning (): void {
    if (this.#expiryWarning !== undefined) this.#timers.clearTimeout(this.#expiryWarning)
    this.#expiryWarning = undefined
  }

  #schedule (delayMs: number, trigger: RefreshTrigger): void {
    this.#clearTimer()
    this.#nextAttemptAt = this.#clock.monotonic() + delayMs
    this.#nextTrigger = trigger
    this.#arm()
  }

  /** Re-arms in steps of at most MAX_TIMER_MS so 30-day lifetimes schedule correctly. */
  #arm (): void {
    const remaining = this.#nextAttemptAt! - this.#clock.monotonic()
    this.#timer = this.#timers.setTimeout(() => {
      this.#timer = undefined
      if (this.#nextAttemptAt! > this.#clock.monotonic()) this.#arm()
      else void this.#refresh(this.#nextTrigger)
    }, Math.max(0, Math.min(remaining, MAX_TIMER_MS)))
  }

  #clearTimer (): void {
    if (this.#timer !== undefined) this.#timers.clearTimeout(this.#timer)
    this.#timer = undefined
  }

  #unavailable (): never {
    if (this.#closing.signal.aborted) throw new TokenUnavailableError('the sidecar is shutting down', 1)
    // Unknown (nothing scheduled yet) or due now: a client may ask again in a second.
    const waitMs = Math.max(1000, (this.#nextAttemptAt ?? 0) - this.#clock.monotonic())
    const reason = this.#last?.result === 'failure'
      ? `the latest token refresh failed (${String(this.#last.error)}); next attempt in ${Math.ceil(waitMs / 1000)} s`
      : 'no token has been obtained yet'
    throw new TokenUnavailableError(reason, waitMs / 1000)
  }
}
