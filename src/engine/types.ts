import type { FailureKind } from './errors.js'

/**
 * Two readings of time, injected so tests control both without sleeping.
 * Wall time can step (NTP, a VM restore, resume from suspend); monotonic time
 * cannot, but it does not count a suspend either. Lifetimes are kept on both.
 */
export interface Clock {
  /** Wall time, ms since the epoch: for expires_at, timestamps and logs. */
  now(): number
  /** Monotonic ms from an arbitrary origin: for elapsed time, deadlines and timers. */
  monotonic(): number
}

/** The subset of the timer API the engine uses; timers run on monotonic time. */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown
  clearTimeout(handle: unknown): void
  setInterval(fn: () => void, ms: number): unknown
  clearInterval(handle: unknown): void
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
  /** `store` when a peer's token was adopted from the fleet's shared store instead of requested. */
  source?: 'upstream' | 'store'
  /** Requested scopes the granted `scope` left out (RFC 6749 §5.1 lets a server narrow it silently). */
  missingScopes?: readonly string[]
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
  /** Monotonic ms at which it expires, or null when only wall time (a JWT's exp) or nothing is known. */
  readonly deadline: number | null
}

/**
 * A servable token and its whole seconds left, from one reading of each
 * clock. The same object comes back while neither changes, so a caller can
 * cache what it builds from it (GET /token caches its JSON body).
 */
export interface Serving {
  readonly token: ServedToken
  readonly expiresIn: number | null
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
  /** What to check, when the answer alone does not say (e.g. a 401 with an empty body). */
  hint?: string
}

export interface HealthSnapshot {
  status: 'ok' | 'degraded' | 'unavailable'
  mode: Mode
  token: { expires_at: string | null, expires_in: number | null } | null
  last_refresh: LastRefresh | null
  next_refresh_at: string | null
  /** Requested scopes the latest token was granted without. */
  missing_scopes?: readonly string[]
}

export type RefreshTrigger = 'startup' | 'timer' | 'forced' | 'retry' | 'clock_jump'

export interface RefreshAttempt {
  trigger: RefreshTrigger
  result: 'success' | FailureKind
  durationMs: number
  /** Set on success. */
  lifetimeSeconds?: number
  /** Set on success: `store` cost no upstream request. */
  source?: 'upstream' | 'store'
}

/** Why POST /token/refresh answered with the held token instead of fetching. */
export type ForcedRefusal = 'too_soon' | 'not_current' | 'backoff'

/** Told about every upstream attempt, e.g. by the metrics. */
export interface RefreshObserver {
  attempt(event: RefreshAttempt): void
  forcedRefused?(reason: ForcedRefusal): void
  /** After each success: how many refreshes an hour the schedule it set amounts to. */
  refreshRate?(refreshesPerHour: number): void
}

/** What the HTTP layer needs from either mode. */
export interface TokenSource {
  readonly mode: Mode
  start(): void
  /** A servable token right now, without waiting; undefined when none is held. */
  current(): ServedToken | undefined
  /** current() with its whole seconds left: the hot path of GET /token. */
  serving(): Serving | undefined
  /** A servable token, waiting for an in-flight fetch; rejects with TokenUnavailableError. */
  token(): Promise<ServedToken>
  /**
   * A token newer than the one a client saw rejected, where policy allows a
   * fetch. `rejectedSha256` is the hex SHA-256 of the rejected token: when it
   * is not the held token's, the client simply had an older one.
   */
  forceRefresh(rejectedSha256?: string): Promise<ServedToken>
  health(): HealthSnapshot
  /** Stops timers and aborts an in-flight fetch, so waiters are answered at once (shutdown). */
  stop(): void
  close(): Promise<void>
}
