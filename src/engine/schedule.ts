/** Node's timers overflow (and fire at once) past 2^31-1 ms, about 24.8 days. */
export const MAX_TIMER_MS = 2 ** 31 - 1

export const REFRESH_POLICY = Object.freeze({
  /** Never refresh before this fraction of the lifetime has passed, whatever the buffer. */
  minLifetimeFraction: 0.5,
  /** Jitter spreads sidecar replicas apart: up to this fraction of the delay... */
  maxJitterFraction: 0.1,
  /** ...and never more than this. */
  maxJitterMs: 60_000
})

export const BACKOFF_POLICY = Object.freeze({
  minTimeoutMs: 1_000,
  maxTimeoutMs: 60_000,
  timeoutFactor: 2,
  /** Full jitter may draw ~0; keep a floor so a failing upstream is never hammered. */
  floorMs: 100
})

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
  const floor = Math.ceil(retryAfterMs)
  if (configError) return Math.max(maxTimeoutMs, floor)
  const ceiling = Math.min(maxTimeoutMs, minTimeoutMs * timeoutFactor ** Math.max(0, attempt - 1))
  return Math.max(floorMs, Math.floor(random() * ceiling), floor)
}
