import { SidecarFailure } from '../errors.js'
import { UPSTREAM_BOUNDS } from './schedule.js'

/** How a token request failed; also the `result` label operators filter on. */
export type FailureKind = 'http_error' | 'network_error' | 'invalid_response' | 'config_error'

export interface TokenRequestErrorDetails {
  kind: FailureKind
  code: string
  status?: number
  /** Auth0's `error` field, e.g. access_denied. */
  auth0Error?: string
  auth0Description?: string
  /** The start of a non-JSON error body (e.g. a proxy's HTML page), already cleaned of secrets. */
  bodyExcerpt?: string
  /** What an operator should check or expect, when the answer alone does not say (also in the message). */
  hint?: string
  retryAfterMs?: number
  /** The server's own Retry-After (or reset) text, when it asked for longer than we wait. */
  retryAfterCapped?: string
  cause?: unknown
}

/**
 * A failed client-credentials request. Messages are written by us and never
 * carry the request body, the client secret or an upstream body verbatim.
 */
export class TokenRequestError extends SidecarFailure {
  readonly kind: FailureKind
  readonly status: number | undefined
  readonly auth0Error: string | undefined
  readonly auth0Description: string | undefined
  readonly bodyExcerpt: string | undefined
  readonly hint: string | undefined
  readonly retryAfterMs: number | undefined
  readonly retryAfterCapped: string | undefined

  constructor (message: string, details: TokenRequestErrorDetails) {
    super(message, details.code, details.cause === undefined ? undefined : { cause: details.cause })
    this.kind = details.kind
    this.status = details.status
    this.auth0Error = details.auth0Error
    this.auth0Description = details.auth0Description
    this.bodyExcerpt = details.bodyExcerpt
    this.hint = details.hint
    this.retryAfterMs = details.retryAfterMs
    this.retryAfterCapped = details.retryAfterCapped
  }
}

/** No unexpired token can be served; the HTTP layer turns this into 503 + Retry-After. */
export class TokenUnavailableError extends SidecarFailure {
  readonly statusCode = 503
  readonly retryAfterSeconds: number

  constructor (message: string, retryAfterSeconds: number) {
    super(message, 'TOKEN_UNAVAILABLE')
    // A whole number of seconds a client can act on, whatever arithmetic produced it:
    // never longer than the longest wait the sidecar itself accepts.
    const max = UPSTREAM_BOUNDS.maxRetryAfterMs / 1000
    this.retryAfterSeconds = Number.isFinite(retryAfterSeconds) ? Math.min(max, Math.max(1, Math.ceil(retryAfterSeconds))) : 60
  }
}

export function asTokenRequestError (err: unknown): TokenRequestError {
  if (err instanceof TokenRequestError) return err
  return new TokenRequestError('token request failed unexpectedly', {
    kind: 'network_error',
    code: 'UNEXPECTED',
    cause: err
  })
}
