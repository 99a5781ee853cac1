import type { Dispatcher } from 'undici'
import { Pool } from './undici-pool.js'
import { B64TOKEN } from '../b64token.js'
import type { AudienceParam } from '../config/load-config.js'
import { TokenRequestError } from '../engine/errors.js'
import { UPSTREAM_BOUNDS } from '../engine/schedule.js'
import type { FetchedToken, TokenTransport } from '../engine/types.js'
import { VERSION } from '../version.js'
import type { ClientAuth, ClientProof } from './client-auth.js'
import { spentQuota, unexplainedRefusal } from './error-hints.js'
import { exhaustedQuota, parseRateLimit, type RateLimitInfo } from './rate-limit.js'
import { longest, quotaReset, retryAfter } from './retry-after.js'

/** A token answer is a few KiB; anything far larger is not Auth0 talking. */
export const MAX_RESPONSE_BYTES = 64 * 1024
/** Longest upstream error description we pass on to logs. */
const MAX_DESCRIPTION_CHARS = 300
/** Longest excerpt of a non-JSON error body (a proxy's HTML page) we pass on to logs. */
const MAX_EXCERPT_CHARS = 200

/** Cleans upstream text for a log line: no configured secret, no control characters, at most `maxChars`. */
export type Scrub = (text: string, maxChars: number) => string

/** Certificate errors that a CA the sidecar does not know explains (OpenSSL's codes, as Node reports them). */
const UNTRUSTED_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT'
])

export const USER_AGENT = `toolbridge-token-sidecar/${VERSION}`

export interface Auth0TransportOptions {
  tokenUrl: URL
  /** How the client proves itself: secret in the body, Basic, or a signed JWT. */
  clientAuth: ClientAuth
  audience: string
  /** How the audience travels: Auth0's `audience`, RFC 8707's `resource`, or both. Default `audience`. */
  audienceParam?: AudienceParam
  scope?: string | undefined
  /** Auth0 organization (id or name) for an M2M token scoped to it. */
  organization?: string | undefined
  /** Whole request, connect to last byte. */
  timeoutMs: number
  /** For tests; by default a keep-alive pool to the token endpoint's origin. */
  dispatcher?: Dispatcher
  /** Called with Auth0's rate-limit and quota headers on every answer, success or error. */
  onRateLimit?: (info: RateLimitInfo) => void
  /** Applied to every piece of upstream text that may reach a log; by default only capped. */
  scrub?: Scrub
}

interface Auth0Answer {
  access_token?: unknown
  scope?: unknown
  token_type?: unknown
  expires_in?: unknown
  error?: unknown
  error_description?: unknown
}

/**
 * The OAuth 2.0 client-credentials grant (RFC 6749 §4.4) for one audience,
 * against Auth0's /oauth/token or any standard token endpoint, over undici:
 * a form-encoded POST, the client authenticated as configured.
 */
export class Auth0Transport implements TokenTransport {
  readonly #url: URL
  /** The grant's fields other than client authentication, in the order sent. */
  readonly #grant: Array<[string, string]>
  readonly #audience: string
  /** The requested scopes, to tell a narrower grant (RFC 6749 §5.1). */
  readonly #scope: string | undefined
  #clientAuth: ClientAuth
  readonly #timeoutMs: number
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean
  readonly #onRateLimit: ((info: RateLimitInfo) => void) | undefined
  readonly #scrub: Scrub

  constructor (opts: Auth0TransportOptions) {
    this.#scrub = opts.scrub ?? ((text, maxChars) => text.slice(0, maxChars))
    this.#url = opts.tokenUrl
    this.#clientAuth = opts.clientAuth
    this.#audience = opts.audience
    this.#scope = opts.scope
    const param = opts.audienceParam ?? 'audience'
    this.#grant = [
      ...(param === 'resource' ? [] : [['audience', opts.audience]]),
      ...(param === 'audience' ? [] : [['resource', opts.audience]]),
      ...(opts.scope === undefined ? [] : [['scope', opts.scope]]),
      ...(opts.organization === undefined ? [] : [['organization', opts.organization]])
    ] as Array<[string, string]>
    this.#onRateLimit = opts.onRateLimit
    this.#timeoutMs = opts.timeoutMs
    this.#ownsDispatcher = opts.dispatcher === undefined
    this.#dispatcher = opts.dispatcher ?? tokenEndpointPool(this.#url, opts.timeoutMs)
  }

  async fetchToken (signal: AbortSignal): Promise<FetchedToken> {
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const combined = AbortSignal.any([signal, timeout])
    const proof = await this.#proof()
    let response: Dispatcher.ResponseData
    let text: string
    try {
      response = await this.#dispatcher.request({
        origin: this.#url.origin,
        path: this.#url.pathname + this.#url.search,
        method: 'POST',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
          'user-agent': USER_AGENT,
          ...proof.headers
        },
        body: new URLSearchParams([['grant_type', 'client_credentials'], ...proof.fields, ...this.#grant]).toString(),
        signal: combined
      })
      text = await readCapped(response.body, MAX_RESPONSE_BYTES)
    } catch (err) {
      throw this.#networkError(err, timeout.aborted)
    }
    const limits = parseRateLimit(response.headers)
    this.#onRateLimit?.(limits)
    return this.#interpret(response.statusCode, response.headers, limits, text)
  }

  /** Secret or key rotation: used from the next request on. */
  setClientAuth (clientAuth: ClientAuth): void {
    this.#clientAuth = clientAuth
  }

  async #proof (): Promise<ClientProof> {
    // The key was checked at start-up and on reload, so this is not expected to fail.
    try {
      return await this.#clientAuth.proof()
    } catch (err) {
      throw new TokenRequestError(`cannot sign the client assertion: ${(err as Error).message}`, {
        kind: 'config_error', code: 'CLIENT_ASSERTION_FAILED', cause: err
      })
    }
  }

  async close (): Promise<void> {
    if (this.#ownsDispatcher) await this.#dispatcher.close()
  }

  #networkError (err: unknown, timedOut: boolean): TokenRequestError {
    if (err instanceof TokenRequestError) return err
    if (timedOut) {
      return new TokenRequestError(`token request to ${this.#url.host} timed out after ${this.#timeoutMs / 1000} s`, {
        kind: 'network_error', code: 'TIMEOUT', cause: err
      })
    }
    const { code, message } = err as { code?: unknown, message?: unknown }
    const known = typeof code === 'string' ? code : undefined
    // TLS failures need their message (self-signed certificate, hostname mismatch…), not only a code.
    let why = typeof message === 'string' && message !== '' ? message : known ?? 'unknown error'
    if (known !== undefined && !why.includes(known)) why = `${why} (${known})`
    const ca = known !== undefined && UNTRUSTED_CA.has(known) ? '; a private CA: set NODE_EXTRA_CA_CERTS to a PEM file with its certificate' : ''
    return new TokenRequestError(`token request to ${this.#url.host} failed: ${this.#scrub(why, MAX_DESCRIPTION_CHARS)}${ca}`, {
      kind: 'network_error', code: known ?? 'NETWORK_ERROR', cause: err
    })
  }

  #interpret (status: number, headers: Dispatcher.ResponseData['headers'], limits: RateLimitInfo, text: string): FetchedToken {
    let body: Auth0Answer | undefined
    try {
      const parsed: unknown = JSON.parse(text)
      if (parsed !== null && typeof parsed === 'object') body = parsed as Auth0Answer
    } catch {}

    if (status !== 200) throw this.#httpError(status, headers, limits, body, text)

    if (body === undefined) {
      throw new TokenRequestError('token endpoint answered 200 with a body that is not a JSON object', {
        kind: 'invalid_response', code: 'INVALID_JSON', status
      })
    }
    const { access_token: accessToken, token_type: tokenType, expires_in: expiresIn } = body
    if (typeof accessToken !== 'string' || accessToken.length === 0) {
      throw invalid('access_token is missing or empty', status)
    }
    if (!B64TOKEN.test(accessToken)) {
      throw invalid('access_token has characters a bearer token cannot carry (RFC 6750 b64token)', status)
    }
    if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') {
      throw invalid('token_type is not Bearer', status)
    }
    if (typeof expiresIn !== 'number' || !Number.isFinite(expiresIn)) {
      throw invalid('expires_in is not a finite number', status)
    }
    const { minExpiresInSeconds: min, maxExpiresInSeconds: max } = UPSTREAM_BOUNDS
    if (expiresIn < min || expiresIn > max) {
      throw invalid(`expires_in ${expiresIn} is outside ${min} s to ${max} s (10 years)`, status)
    }
    const missingScopes = this.#missingScopes(body.scope)
    return { accessToken, expiresInSeconds: Math.floor(expiresIn), ...(missingScopes === undefined ? {} : { missingScopes }) }
  }

  /** Requested scopes a granted `scope` leaves out; none when the answer has no scope (then it is the requested one). */
  #missingScopes (granted: unknown): string[] | undefined {
    if (this.#scope === undefined || typeof granted !== 'string') return undefined
    const got = new Set(granted.split(/\s+/))
    const missing = this.#scope.split(' ').filter((scope) => !got.has(scope))
    return missing.length === 0 ? undefined : missing
  }

  #httpError (status: number, headers: Dispatcher.ResponseData['headers'], limits: RateLimitInfo, body: Auth0Answer | undefined, text: string): TokenRequestError {
    const auth0Error = typeof body?.error === 'string' ? this.#scrub(body.error, 64) : undefined
    const auth0Description = typeof body?.error_description === 'string'
      ? this.#scrub(body.error_description, MAX_DESCRIPTION_CHARS)
      : undefined
    const excerpt = body === undefined && text.trim() !== '' ? this.#scrub(text, MAX_EXCERPT_CHARS) : undefined
    // 401/403 (access_denied, unauthorized_client, invalid_client) and 400 do not heal by retrying.
    const configError = status === 400 || status === 401 || status === 403
    const detail = auth0Error === undefined ? '' : ` ${auth0Error}`
    // A spent quota waits for its bucket; the rate limit's reset is honoured whatever the status.
    const quota = status === 429 ? exhaustedQuota(limits.quotas, `${String(body?.error)} ${String(body?.error_description)}`) : undefined
    const wait = longest(retryAfter(headers, Date.now()), quota === undefined ? undefined : quotaReset(quota))
    const hint = quota !== undefined
      ? spentQuota(quota)
      : (status === 401 || status === 403) && auth0Error === undefined
          ? unexplainedRefusal(status, { clientAuth: this.#clientAuth, audience: this.#audience, scope: this.#scope })
          : undefined
    return new TokenRequestError(`${this.#url.host} answered ${status}${detail}${hint === undefined ? '' : `; ${hint}`}`, {
      kind: configError ? 'config_error' : 'http_error',
      code: `HTTP_${status}`,
      status,
      ...(auth0Error === undefined ? {} : { auth0Error }),
      ...(auth0Description === undefined ? {} : { auth0Description }),
      ...(excerpt === undefined ? {} : { bodyExcerpt: excerpt }),
      ...(hint === undefined ? {} : { hint }),
      ...(wait === undefined ? {} : { retryAfterMs: wait.ms }),
      ...(wait?.capped === undefined ? {} : { retryAfterCapped: wait.capped })
    })
  }
}

/** A keep-alive pool to the token endpoint's origin, which the transports of several audiences can share. */
export function tokenEndpointPool (url: URL, timeoutMs: number): Pool {
  return new Pool(url.origin, {
    connections: 2,
    connectTimeout: timeoutMs,
    // Refreshes are hours apart; a kept socket would be stale by then anyway.
    keepAliveTimeout: 30_000
  })
}

function invalid (what: string, status: number): TokenRequestError {
  return new TokenRequestError(`token endpoint answer rejected: ${what}`, {
    kind: 'invalid_response', code: 'INVALID_TOKEN_RESPONSE', status
  })
}

async function readCapped (body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of body) {
    size += (chunk as Buffer).length
    if (size > maxBytes) {
      body.destroy()
      throw new TokenRequestError(`token endpoint answer exceeds ${maxBytes} bytes`, {
        kind: 'invalid_response', code: 'RESPONSE_TOO_LARGE'
      })
    }
    chunks.push(chunk as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
