/** Node's timers overflow (and fire at once) past 2^31-1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** A token with less than this left is treated as expired: the caller could not use it in time. */
export const MIN_REMAINING_MS = 1_000

export const REFRESH_POLICY = Object.freeze({
  /** Never refresh before this fraction of the lifetime has passed, whatever the buffer. */
  minLifetimeFraction: 0.5,
  /** Jitter spreads sidecar replicas apart: up to this fraction of the delay... */
  maxJitterFraction: 0.1,
  /** ...and never more than this. */
  maxJitterMs: 60_000,
  /** Auth0's longest token lifetime; a longer one is served but refreshed as if it lived this long. */
  maxScheduledLifetimeMs: 30 * 86_400_000
})

export const BACKOFF_POLICY = Object.freeze({
  minTimeoutMs: 1_000,
  maxTimeoutMs: 60_000,
  timeoutFactor: 2,
  /** Full jitter may draw ~0; keep a floor so a failing upstream is never hammered. */
  floorMs: 100
})

/** What a token endpoint may say about time before we stop believing it. */
export const UPSTREAM_BOUNDS = Object.freeze({
  /** Below this a token would be refreshed in a tight loop. */
  minExpiresInSeconds: 5,
  /** 10 years (3650 days); beyond it the number is a bug, not a lifetime. */
  maxExpiresInSeconds: 3650 * 86_400,
  /** Retry-After and x-ratelimit-reset beyond this are treated as this (Auth0's quota waits are about an hour). */
  maxRetryAfterMs: 3_600_000
})

/**
 * POST /token/refresh spends Auth0 quota, so forced fetches are spaced out:
 * the first needs a token at least `minSpacingMs` old, each further one twice
 * the previous gap, up to `maxSpacingMs`, until a timer refresh succeeds.
 */
export const FORCED_REFRESH_POLICY = Object.freeze({
  minSpacingMs: 10_000,
  factor: 2,
  maxSpacingMs: 600_000
})

/** How wall-clock steps are noticed: the two clocks are compared this often, and this much apart is a step. */
export const CLOCK_POLICY = Object.freeze({
  checkIntervalMs: 1_000,
  jumpThresholdMs: 5_000,
  /** One `clock_jump` warning per audience this often; the steps between are logged at debug and counted in the next. */
  warnIntervalMs: 60_000
})

/** Warn (once) when an issued lifetime would make an audience refresh more often than this per hour. */
export const DEFAULT_REFRESH_BUDGET_PER_HOUR = 60

/** Gap a forced fetch needs after the previous one, given how many came since the last timer refresh. */
export function forcedSpacingMs (streak: number): number {
  const { minSpacingMs, factor, maxSpacingMs } = FORCED_REFRESH_POLICY
  return Math.min(maxSpacingMs, minSpacingMs * factor ** Math.min(streak, 32))
}

/**
 * Delay from obtaining a token to refreshing it: the buffer before expiry,
 * but never earlier than half the lifetime, with a little jitter earlier.
 */
export function refreshDelayMs (lifetimeMs: number, bufferMs: number, random: () => number): number {
  const earliest = lifetimeMs * REFRESH_POLICY.minLifetimeFraction
  const target = Math.max(lifetimeMs - bufferMs, earliest)
  const jitter = random() * Math.min(target * REFRESH_POLICY.maxJitterFraction, REFRESH_POLICY.maxJitterMs)
  return Math.floor(Math.max(earliest, target - jitter))
}

/**
 * Exponential backoff with full jitter (attempt is 1-based). A server's
 * Retry-After is a floor: a 429 still counts against the rate limit.
 * Configuration errors will not heal by retrying soon, so they wait the longest step.
 */
export function backoffDelayMs (
  attempt: number,
  random: () => number,
  retryAfterMs = 0,
  configError = false
): number {
  const { minTimeoutMs, maxTimeoutMs, timeoutFactor, floorMs } = BACKOFF_POLICY
  const floor = Math.ceil(Math.min(retryAfterMs, UPSTREAM_BOUNDS.maxRetryAfterMs))
  if (configError) return Math.max(maxTimeoutMs, floor)
  const ceiling = Math.min(maxTimeoutMs, minTimeoutMs * timeoutFactor ** Math.max(0, Math.min(attempt, 32) - 1))
  return Math.max(floorMs, Math.floor(random() * ceiling), floor)
}
