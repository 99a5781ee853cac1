import type { FailureKind } from './errors.js'

/** Milliseconds since the epoch; injected so tests control time without sleeping. */
export interface Clock {
  now(): number
}

/** The subset of the timer API the engine uses; tests swap in a fake that advances with the clock. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
}

/** Structural subset of pino's logger, so the engine never imports pino. */
export interface EngineLogger {
  debug(obj: object, msg: string): void
  info(obj: object, msg: string): void
  warn(obj: object, msg: string): void
  error(obj: object, msg: string): void
}

export interface FetchedToken {
  accessToken: string
  expiresInSeconds: number
}

/** One client-credentials request to the token endpoint; rejects with a TokenRequestError. */
export interface TokenTransport {
  fetchToken(signal: AbortSignal): Promise<FetchedToken>
  /** Releases connections; called after in-flight requests were aborted. */
  close?(): Promise<void>
}

export interface ServedToken {
  readonly accessToken: string
  /** Epoch ms, or null for a static token with no known expiry. */
  readonly expiresAt: number | null
  readonly expiresAtIso: string | null
}

export type Mode = 'auto-refresh' | 'static'

export interface LastRefresh {
  at: string
  trigger: RefreshTrigger
  result: 'success' | 'failure'
  attempt: number
  error?: string
  error_kind?: string
  status?: number
}

export interface HealthSnapshot {
  status: 'ok' | 'degraded' | 'unavailable'
  mode: Mode
  token: { expires_at: string | null, expires_in: number | null } | null
  last_refresh: LastRefresh | null
  next_refresh_at: string | null
}

export type RefreshTrigger = 'startup' | 'timer' | 'forced' | 'retry'

export interface RefreshAttempt {
  trigger: RefreshTrigger
  result: 'success' | FailureKind
  durationMs: number
  /** Set on success. */
  lifetimeSeconds?: number
}

/** Told about every upstream attempt, e.g. by the metrics. */
export interface RefreshObserver {
  attempt(event: RefreshAttempt): void
}

/** What the HTTP layer needs from either mode. */
export interface TokenSource {
  readonly mode: Mode
  start(): void
  /** A servable token right now, without waiting; undefined when none is held. */
  current(): ServedToken | undefined
  /** A servable token, waiting for an in-flight fetch; rejects with TokenUnavailableError. */
  token(): Promise<ServedToken>
  /** A token newer than the one a client saw rejected, where policy allows a fetch. */
  forceRefresh(): Promise<ServedToken>
  health(): HealthSnapshot
  close(): Promise<void>
}

export const systemClock: Clock = { now: () => Date.now() }

export const systemTimers: Timers = {
  setTimeout (fn, ms) {
    // unref: a pending refresh must never keep a closing process alive.
    return setTimeout(fn, ms).unref()
  },
  clearTimeout (handle) {
    clearTimeout(handle as NodeJS.Timeout)
  }
}
