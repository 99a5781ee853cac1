import { createHash } from 'node:crypto'
import type { LookupFunction } from 'node:net'
import { Pool, type Dispatcher } from 'undici'
import { SidecarAuthError, SidecarError, SidecarUnavailableError, SidecarUnreachableError } from './errors.js'

export interface TokenClientOptions {
  /** The sidecar's base URL, e.g. http://tokens.process.my-app.internal:8787 */
  url: string | URL
  /** TOOLBRIDGE_SIDECAR_SECRET */
  secret: string
  /** One of the sidecar's configured audiences; by default its first. */
  audience?: string
  /** Per call, connect to last byte. Default 2000. */
  timeoutMs?: number
  /**
   * How long to try one address before the next, when the sidecar's name
   * resolves to several (two `tokens` Machines on Fly). Default 500.
   */
  connectAttemptTimeoutMs?: number
  /** Resolves the sidecar's host name (tests); by default the system resolver. */
  lookup?: LookupFunction
  /** For tests or custom pools; by default a keep-alive pool to the sidecar. */
  dispatcher?: Dispatcher
}

export interface TokenClient {
  /** A valid access token, asked of the sidecar on every call (the sidecar is the cache). */
  token(): Promise<string>
  /** `Bearer <token>`, ready for an Authorization header. */
  authorizationHeader(): Promise<string>
  /**
   * For after the API rejected a token with 401: asks the sidecar for a newer
   * one. Pass the rejected token: the sidecar then fetches only if it is still
   * the one it serves (only its SHA-256 is sent).
   */
  refresh(rejectedToken?: string): Promise<string>
  close(): Promise<void>
}

export const DEFAULT_TIMEOUT_MS = 2_000
export const DEFAULT_CONNECT_ATTEMPT_TIMEOUT_MS = 500

/** Creates a client of the token sidecar over an undici keep-alive pool. */
export function createTokenClient (opts: TokenClientOptions): TokenClient {
  const base = new URL(opts.url)
  const prefix = base.pathname.replace(/\/+$/, '')
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const ownsDispatcher = opts.dispatcher === undefined
  // Every address the name resolves to is tried in turn within one call: a refused
  // or silent Machine costs at most connectAttemptTimeoutMs before the next is asked.
  const dispatcher = opts.dispatcher ?? new Pool(base.origin, {
    connections: 16,
    connect: {
      // No connection attempt outlives the call that started it.
      timeout: timeoutMs,
      autoSelectFamily: true,
      autoSelectFamilyAttemptTimeout: opts.connectAttemptTimeoutMs ?? DEFAULT_CONNECT_ATTEMPT_TIMEOUT_MS,
      ...(opts.lookup === undefined ? {} : { lookup: opts.lookup })
    }
  })
  const authorization = `Bearer ${opts.secret}`
  const query = opts.audience === undefined ? '' : `?audience=${encodeURIComponent(opts.audience)}`

  async function call (method: 'GET' | 'POST', path: string, payload?: string): Promise<string> {
    let status: number
    let headers: Dispatcher.ResponseData['headers']
    let text: string
    try {
      const res = await dispatcher.request({
        origin: base.origin,
        path: prefix + path + query,
        method,
        headers: payload === undefined
          ? { authorization, accept: 'application/json' }
          : { authorization, accept: 'application/json', 'content-type': 'application/json' },
        ...(payload === undefined ? {} : { body: payload }),
        signal: AbortSignal.timeout(timeoutMs)
      })
      status = res.statusCode
      headers = res.headers
      text = await res.body.text()
    } catch (err) {
      const code = (err as { code?: unknown }).code
      throw new SidecarUnreachableError(`token sidecar at ${base.origin} is unreachable (${typeof code === 'string' ? code : (err as Error).name}) after at most ${timeoutMs} ms`, { cause: err })
    }
    let body: { access_token?: unknown, error?: unknown, error_description?: unknown } = {}
    try {
      body = JSON.parse(text) as typeof body
    } catch {}
    if (status === 200 && typeof body.access_token === 'string' && body.access_token !== '') return body.access_token
    if (status === 401) {
      throw new SidecarAuthError(`token sidecar at ${base.origin} rejected the sidecar secret (401): TOOLBRIDGE_SIDECAR_SECRET must match the sidecar's`)
    }
    if (status === 503) {
      const retryAfter = Number(headers['retry-after'])
      const why = typeof body.error_description === 'string' ? `: ${body.error_description}` : ''
      throw new SidecarUnavailableError(
        `token sidecar at ${base.origin} has no valid token (503)${why}; see its /healthz`,
        Number.isFinite(retryAfter) ? retryAfter : undefined
      )
    }
    if (status === 400) {
      // E.g. an audience the sidecar is not configured for: a setting to fix, not a glitch to retry.
      const why = typeof body.error_description === 'string' ? body.error_description : 'bad request'
      throw new SidecarError(`token sidecar at ${base.origin} refused the request (400): ${why}`, 'SIDECAR_BAD_REQUEST')
    }
    throw new SidecarError(`token sidecar at ${base.origin} answered ${status} ${typeof body.error === 'string' ? body.error : 'without a token'}`, 'SIDECAR_BAD_RESPONSE')
  }

  return {
    token: () => call('GET', '/token'),
    authorizationHeader: async () => `Bearer ${await call('GET', '/token')}`,
    refresh: (rejectedToken) => call('POST', '/token/refresh', rejectedToken === undefined
      ? undefined
      : JSON.stringify({ rejected_token_sha256: createHash('sha256').update(rejectedToken).digest('hex') })),
    async close () {
      if (ownsDispatcher) await dispatcher.close()
    }
  }
}
