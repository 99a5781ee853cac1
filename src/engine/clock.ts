import { MAX_DATE_MS } from '../jwt.js'
import type { Clock, ServedToken, Timers } from './types.js'

// The engine's runtime clock and timers (types.ts holds only types).

export const systemClock: Clock = { now: () => Date.now(), monotonic: () => performance.now() }

// unref: a pending refresh or clock check must never keep a closing process alive.
export const systemTimers: Timers = {
  setTimeout (fn, ms) {
    return setTimeout(fn, ms).unref()
  },
  clearTimeout (handle) {
    clearTimeout(handle as NodeJS.Timeout)
  },
  setInterval (fn, ms) {
    return setInterval(fn, ms).unref()
  },
  clearInterval (handle) {
    clearInterval(handle as NodeJS.Timeout)
  }
}

/**
 * Milliseconds a served token has left: the smaller of what wall time and
 * monotonic time say, null when it has no known expiry.
 */
export function remainingMs (token: ServedToken, clock: Clock): number | null {
  const { expiresAt, deadline } = token
  if (expiresAt === null) return null
  const wall = expiresAt - clock.now()
  return deadline === null ? wall : Math.min(wall, deadline - clock.monotonic())
}


/** ISO form of an epoch-ms time, or null when no Date can hold it (never throws). */
export function isoTime (ms: number): string | null {
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? new Date(ms).toISOString() : null
}
