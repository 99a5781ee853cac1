import { Pool, type Dispatcher } from 'undici'
import { B64TOKEN } from '../b64token.js'
import { TokenRequestError } from '../engine/errors.js'
import { UPSTREAM_BOUNDS } from '../engine/schedule.js'
import type { FetchedToken, TokenTransport } from '../engine/types.js'
import { parseRateLimit, type RateLimitInfo } from './rate-limit.js'
import { retryAfter } from './retry-after.js'

/** A token answer is a few KiB; anything far larger is not Auth0 talking. */
export const MAX_RESPONSE_BYTES = 64 * 1024
/** Longest upstream error description we pass on to logs. */
const MAX_DESCRIPTION_CHARS = 300
/** Longest excerpt of a non-JSON error body (a proxy's HTML page) we pass on to logs. */
const MAX_EXCERPT_CHARS = 200

/** Cleans upstream text for a log line: no configured secret, no control characters, at most `maxChars`. */
export type Scrub = (text: string, maxChars: number) => string

export interface Auth0TransportOptions {
  tokenUrl: URL
  clientId: string
  clientSecret: string
  audience: string
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
  token_type?: unknown
  expires_in?: unknown
  error?: unknown
  error_description?: unknown
}

/** The OAuth2 client-credentials grant against Auth0's /oauth/token, over undici. */
export class Auth0Transport implements TokenTransport {
  readonly #url: URL
  readonly #clientId: string
  readonly #audience: string
  #body: string
  readonly #timeoutMs: number
  readonly #dispatcher: Dispatcher
  readonly #ownsDispatcher: boolean
  readonly #onRateLimit: ((info: RateLimitInfo) => void) | undefined
  readonly #scrub: Scrub

  constructor (opts: Auth0TransportOptions) {
    this.#scrub = opts.scrub ?? ((text, maxChars) => text.slice(0, maxChars))
    this.#url = opts.tokenUrl
    this.#clientId = opts.clientId
    this.#audience = opts.audience
    this.#body = this.#grant(opts.clientSecret)
    this.#onRateLimit = opts.onRateLimit
    this.#timeoutMs = opts.timeoutMs
    this.#ownsDispatcher = opts.dispatcher === undefined
    this.#dispatcher = opts.dispatcher ?? new Pool(this.#url.origin, {
      connections: 2,
      connectTimeout: opts.timeoutMs,
      // Refreshes are hours apart; a kept socket would be stale by then anyway.
      keepAliveTimeout: 30_000
    })
  }

  async fetchToken (signal: AbortSignal): Promise<FetchedToken> {
    const timeout = AbortSignal.timeout(this.#timeoutMs)
    const combined = AbortSignal.any([signal, timeout])
    let response: Dispatcher.ResponseData
    let text: string
    try {
      response = await this.#dispatcher.request({
        origin: this.#url.origin,
        path: this.#url.pathname + this.#url.search,
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: this.#body,
        signal: combined
      })
      text = await readCapped(response.body, MAX_RESPONSE_BYTES)
    } catch (err) {
      throw this.#networkError(err, timeout.aborted)
    }
    this.#onRateLimit?.(parseRateLimit(response.headers))
    return this.#interpret(response.statusCode, response.headers, text)
  }

  /** Secret rotation: used from the next request on. */
  setClientSecret (clientSecret: string): void {
    this.#body = this.#grant(clientSecret)
  }

  #grant (clientSecret: string): string {
    return JSON.stringify({
      grant_type: 'client_credentials',
      client_id: this.#clientId,
      client_secret: clientSecret,
      audience: this.#audience
    })
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
    const code = (err as { code?: unknown }).code
    return new TokenRequestError(`token request to ${this.#url.host} failed: ${typeof code === 'string' ? code : (err as Error).message}`, {
      kind: 'network_error', code: typeof code === 'string' ? code : 'NETWORK_ERROR', cause: err
    })
  }

  #interpret (status: number, headers: Dispatcher.ResponseData['headers'], text: string): FetchedToken {
    let body: Auth0Answer | undefined
    try {
      const parsed: unknown = JSON.parse(text)
      if (parsed !== null && typeof parsed === 'object') body = parsed as Auth0Answer
    } catch {}

    if (status !== 200) throw this.#httpError(status, headers, body, text)

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
    return { accessToken, expiresInSeconds: Math.floor(expiresIn) }
  }

  #httpError (status: number, headers: Dispatcher.ResponseData['headers'], body: Auth0Answer | undefined, text: string): TokenRequestError {
    const auth0Error = typeof body?.error === 'string' ? this.#scrub(body.error, 64) : undefined
    const auth0Description = typeof body?.error_description === 'string'
      ? this.#scrub(body.error_description, MAX_DESCRIPTION_CHARS)
      : undefined
    const excerpt = body === undefined && text.trim() !== '' ? this.#scrub(text, MAX_EXCERPT_CHARS) : undefined
    // 401/403 (access_denied, unauthorized_client, invalid_client) and 400 do not heal by retrying.
    const configError = status === 400 || status === 401 || status === 403
    const detail = auth0Error === undefined ? '' : ` ${auth0Error}`
    const wait = status === 429 || status === 503 ? retryAfter(headers, status, Date.now()) : undefined
    return new TokenRequestError(`${this.#url.host} answered ${status}${detail}`, {
      kind: configError ? 'config_error' : 'http_error',
      code: `HTTP_${status}`,
      status,
      ...(auth0Error === undefined ? {} : { auth0Error }),
      ...(auth0Description === undefined ? {} : { auth0Description }),
      ...(excerpt === undefined ? {} : { bodyExcerpt: excerpt }),
      ...(wait === undefined ? {} : { retryAfterMs: wait.ms }),
      ...(wait?.capped === undefined ? {} : { retryAfterCapped: wait.capped })
    })
  }
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
