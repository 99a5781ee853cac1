import { createHash } from 'node:crypto'
import { lookup as dnsLookup } from 'node:dns'
import { isIP, type LookupFunction } from 'node:net'
import { Pool, type Dispatcher } from 'undici'
import { SidecarAuthError, SidecarError, SidecarUnavailableError, SidecarUnreachableError } from './errors.js'

export interface TokenClientOptions {
  /** The sidecar's base URL, e.g. http://tokens.process.my-app.internal:8787 */
  url: string | URL
  /** TOOLBRIDGE_SIDECAR_SECRET */
  secret: string
  /** One of the sidecar's configured audiences; by default its first. */
  audience?: string
  /** Per call, connect to last byte, over every address tried. Default 2000. */
  timeoutMs?: number
  /**
   * How long to try one address (connect and response headers) before the
   * next, when the sidecar's name resolves to several (two `tokens` Machines
   * on Fly). The last address gets whatever is left of the call. Default 500.
   */
  connectAttemptTimeoutMs?: number
  /** Resolves the sidecar's host name (tests); by default the system resolver. */
  lookup?: LookupFunction
  /** For tests or custom pools; by default a keep-alive pool per sidecar address. One attempt, no failover. */
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

/**
 * How the client spreads a call over the sidecar's addresses. A resolved list
 * is reused for `resolveTtlMs` (no DNS query per token call) and dropped when
 * every address failed, so the next call asks DNS again.
 */
export const FAILOVER_POLICY = Object.freeze({ resolveTtlMs: 5_000 })

interface Address { address: string, family: number }

/** An answer worth trying another Machine for: a refused, silent or hung address, or a 503. */
class TryNext extends Error {
  constructor (readonly failure: SidecarError) {
    super(failure.message)
  }
}

/**
 * Rejects when `signal` aborts. undici applies an abort only once a connection
 * is up, so a silent address would otherwise hold the call until the connect
 * timeout; the request left behind is settled and its body discarded.
 */
async function aborted (signal: AbortSignal, pending: Promise<Dispatcher.ResponseData>): Promise<never> {
  return await new Promise<never>((_resolve, reject) => {
    const onAbort = (): void => {
      pending.then(async (res) => await res.body.dump(), () => {})
      reject(signal.reason)
    }
    if (signal.aborted) onAbort()
    else signal.addEventListener('abort', onAbort, { once: true })
    pending.then(() => signal.removeEventListener('abort', onAbort), () => signal.removeEventListener('abort', onAbort))
  })
}

/** A lookup that always answers `address`: a pool per sidecar Machine, Host header unchanged. */
function pinned ({ address, family }: Address): LookupFunction {
  return ((_hostname: string, options: { all?: boolean }, callback: (err: Error | null, address: unknown, family?: number) => void) => {
    if (options.all === true) callback(null, [{ address, family }])
    else callback(null, address, family)
  }) as unknown as LookupFunction
}

/** Creates a client of the token sidecar over undici keep-alive pools. */
export function createTokenClient (opts: TokenClientOptions): TokenClient {
  const base = new URL(opts.url)
  const prefix = base.pathname.replace(/\/+$/, '')
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const attemptMs = opts.connectAttemptTimeoutMs ?? DEFAULT_CONNECT_ATTEMPT_TIMEOUT_MS
  const lookup = opts.lookup ?? (dnsLookup as unknown as LookupFunction)
  const hostname = base.hostname.replace(/^\[(.*)\]$/, '$1')
  const literal = isIP(hostname)
  const pools = new Map<string, Pool>()
  let resolved: { addresses: Address[], at: number } | undefined
  // The address that answered last goes first: a silent Machine costs one attempt, not one per call.
  let preferred: string | undefined

  function poolFor (address: Address): Pool {
    let pool = pools.get(address.address)
    if (pool === undefined) {
      pool = new Pool(base.origin, {
        connections: 16,
        // No connection attempt outlives the call that started it.
        connect: { timeout: timeoutMs, lookup: pinned(address) }
      })
      pools.set(address.address, pool)
    }
    return pool
  }

  async function addresses (): Promise<Address[]> {
    if (literal !== 0) return [{ address: hostname, family: literal }]
    if (resolved !== undefined && performance.now() - resolved.at < FAILOVER_POLICY.resolveTtlMs) return resolved.addresses
    const found = await new Promise<Address[]>((resolve, reject) => {
      lookup(hostname, { all: true }, (err, list) => {
        if (err !== null) reject(err)
        else resolve(list as unknown as Address[])
      })
    })
    resolved = { addresses: found, at: performance.now() }
    // Machines that left DNS (a blue-green deploy destroyed them) take their pools with them.
    for (const [address, pool] of pools) {
      if (found.some((a) => a.address === address)) continue
      pools.delete(address)
      void pool.close()
    }
    return found
  }

  const authorization = `Bearer ${opts.secret}`
  const query = opts.audience === undefined ? '' : `?audience=${encodeURIComponent(opts.audience)}`

  function unreachable (err: unknown, where: string): SidecarUnreachableError {
    const code = (err as { code?: unknown }).code
    return new SidecarUnreachableError(`token sidecar at ${where} is unreachable (${typeof code === 'string' ? code : (err as Error).name}) after at most ${timeoutMs} ms`, { cause: err })
  }

  /** One request to one address; throws TryNext for what another Machine may answer better. */
  async function attempt (dispatcher: Dispatcher, method: 'GET' | 'POST', path: string, payload: string | undefined, signal: AbortSignal, headersArrived: () => void): Promise<string> {
    let status: number
    let headers: Dispatcher.ResponseData['headers']
    let text: string
    try {
      const pending = dispatcher.request({
        origin: base.origin,
        path: prefix + path + query,
        method,
        headers: payload === undefined
          ? { authorization, accept: 'application/json' }
          : { authorization, accept: 'application/json', 'content-type': 'application/json' },
        ...(payload === undefined ? {} : { body: payload }),
        signal
      })
      const res = await Promise.race([pending, aborted(signal, pending)])
      headersArrived()
      status = res.statusCode
      headers = res.headers
      text = await res.body.text()
    } catch (err) {
      throw new TryNext(unreachable(err, base.origin))
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
      throw new TryNext(new SidecarUnavailableError(
        `token sidecar at ${base.origin} has no valid token (503)${why}; see its /healthz`,
        Number.isFinite(retryAfter) ? retryAfter : undefined
      ))
    }
    if (status === 400) {
      // E.g. an audience the sidecar is not configured for: a setting to fix, not a glitch to retry.
      const why = typeof body.error_description === 'string' ? body.error_description : 'bad request'
      throw new SidecarError(`token sidecar at ${base.origin} refused the request (400): ${why}`, 'SIDECAR_BAD_REQUEST')
    }
    throw new SidecarError(`token sidecar at ${base.origin} answered ${status} ${typeof body.error === 'string' ? body.error : 'without a token'}`, 'SIDECAR_BAD_RESPONSE')
  }

  /**
   * Tries the sidecar's addresses in turn within one deadline. A refused or
   * silent address and a 503 (a Machine without a token, e.g. a green one
   * whose check has not passed yet) move on to the next; a 401 or 400 would be
   * the same everywhere and ends the call.
   */
  async function call (method: 'GET' | 'POST', path: string, payload?: string): Promise<string> {
    const deadline = AbortSignal.timeout(timeoutMs)
    if (opts.dispatcher !== undefined) {
      try {
        return await attempt(opts.dispatcher, method, path, payload, deadline, () => {})
      } catch (err) {
        throw err instanceof TryNext ? err.failure : err
      }
    }
    let list: Address[]
    try {
      list = await addresses()
    } catch (err) {
      throw unreachable(err, base.origin)
    }
    const ordered = [...list.filter((a) => a.address === preferred), ...list.filter((a) => a.address !== preferred)]
    let last: SidecarError | undefined
    let unavailable: SidecarError | undefined
    for (let i = 0; i < ordered.length; i++) {
      const address = ordered[i]!
      const isLast = i === ordered.length - 1
      // Every address but the last gets one attempt's time until its headers arrive; then only the call's deadline applies.
      const cut = new AbortController()
      const timer = isLast ? undefined : setTimeout(() => cut.abort(new DOMException('connect attempt timed out', 'TimeoutError')), attemptMs)
      try {
        const token = await attempt(poolFor(address), method, path, payload, AbortSignal.any([deadline, cut.signal]), () => clearTimeout(timer))
        preferred = address.address
        return token
      } catch (err) {
        if (!(err instanceof TryNext)) throw err
        last = err.failure
        if (last instanceof SidecarUnavailableError) unavailable = last
      } finally {
        clearTimeout(timer)
      }
      if (deadline.aborted) break
    }
    resolved = undefined
    // A Machine that answered 503 says more about the sidecar than one that did not answer.
    /* c8 ignore next -- a lookup answers at least one address or an error; the fallback only keeps a malformed answer from throwing undefined */
    throw unavailable ?? last ?? new SidecarUnreachableError(`token sidecar at ${base.origin} resolved to no address`)
  }

  return {
    token: () => call('GET', '/token'),
    authorizationHeader: async () => `Bearer ${await call('GET', '/token')}`,
    refresh: (rejectedToken) => call('POST', '/token/refresh', rejectedToken === undefined
      ? undefined
      : JSON.stringify({ rejected_token_sha256: createHash('sha256').update(rejectedToken).digest('hex') })),
    async close () {
      const owned = [...pools.values()]
      pools.clear()
      await Promise.all(owned.map(async (pool) => await pool.close()))
    }
  }
}
