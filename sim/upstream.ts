import { TokenRequestError } from '../src/engine/errors.js'
import { UPSTREAM_BOUNDS } from '../src/engine/schedule.js'
import type { FetchedToken, TokenTransport } from '../src/engine/types.js'
import { retryAfter } from '../src/upstream/retry-after.js'
import type { Prng } from './random.js'
import type { Scheduler } from './scheduler.js'

/** What the token endpoint does to a request right now. */
export type UpstreamFault = 'rate_limited' | 'server_error' | 'hang' | 'refuse' | 'lie' | 'slow'

/** Every access token carries this in its signature, so a leak into a log line is found by one search. */
export const TOKEN_MARK = 'SIMSIG'

export interface IssuedToken {
  id: number
  audience: string
  host: number
  /** True times (ms from the start of the run). */
  issuedAt: number
  expiresAt: number
  lifetimeS: number
}

/** One request that reached the token endpoint. */
export interface UpstreamRequest {
  at: number
  host: number
  instance: number
  audience: string
  /** What the endpoint answered: a token id, or the failure. */
  outcome: string
  /** When it asked for a pause: Retry-After in ms as the sidecar reads it (capped at an hour). */
  retryAfterMs?: number
  /** True time at which the answer arrived (undefined while it hangs). */
  answeredAt?: number
}

export interface EndpointOptions {
  epochMs: number
  lifetimeS: number
  timeoutMs: number
  /** Auth0's M2M quota: token requests per hour for this client. */
  quotaPerHour: number
}

/**
 * The token endpoint, modelled on Auth0's /oauth/token: issues JWTs with a
 * lifetime and a true expiry, counts an hourly quota (429 + Retry-After when
 * it is spent), and under faults answers 429 with Retry-After, 5xx, hangs
 * until the sidecar's timeout, refuses the credentials (401), answers slowly,
 * or issues lifetimes at the edges of what the sidecar accepts. The HTTP
 * exchange is not simulated: each answer is turned into what Auth0Transport
 * returns or throws for it.
 */
export class TokenEndpoint {
  readonly #sched: Scheduler
  readonly #rng: Prng
  readonly #opts: EndpointOptions
  readonly tokens = new Map<string, IssuedToken>()
  readonly requests: UpstreamRequest[] = []
  readonly #listeners: Array<(request: UpstreamRequest) => void> = []
  fault: UpstreamFault | undefined
  /** For `rate_limited`: what Retry-After says, in seconds. */
  retryAfterS = 60
  /** The credential version the endpoint accepts (a rotation moves it on). */
  secretVersion = 1
  #issued = 0
  #hour = -1
  #hourCount = 0

  constructor (sched: Scheduler, rng: Prng, opts: EndpointOptions) {
    this.#sched = sched
    this.#rng = rng
    this.#opts = opts
  }

  get lifetimeS (): number {
    return this.#opts.lifetimeS
  }

  onRequest (listener: (request: UpstreamRequest) => void): void {
    this.#listeners.push(listener)
  }

  /** The transport one sidecar instance uses for one audience. */
  transport (host: number, instance: number, audience: string, secretVersion: () => number, alive: () => boolean): TokenTransport {
    return { fetchToken: (signal) => this.#request(host, instance, audience, secretVersion(), alive, signal) }
  }

  #request (host: number, instance: number, audience: string, version: number, alive: () => boolean, signal: AbortSignal): Promise<FetchedToken> {
    const sched = this.#sched
    sched.dirty = true
    const request: UpstreamRequest = { at: sched.now, host, instance, audience, outcome: 'pending' }
    this.requests.push(request)
    const fault = this.fault
    let latency = this.#rng.range(20, 250)
    if (fault === 'slow') latency = this.#rng.range(1000, this.#opts.timeoutMs * 1.5)
    const timedOut = fault === 'hang' || latency > this.#opts.timeoutMs
    return new Promise<FetchedToken>((resolve, reject) => {
      let done = false
      const finish = (settle: () => void): void => {
        if (done) return
        done = true
        signal.removeEventListener('abort', onAbort)
        // A crashed process never hears its answer.
        if (!alive()) return
        request.answeredAt = sched.now
        sched.dirty = true
        settle()
      }
      const onAbort = (): void => { finish(() => reject(signal.reason)) }
      signal.addEventListener('abort', onAbort, { once: true })
      if (timedOut) {
        request.outcome = 'timeout'
        sched.after(this.#opts.timeoutMs, () => finish(() => reject(new TokenRequestError(`token request to sim-tenant timed out after ${this.#opts.timeoutMs / 1000} s`, { kind: 'network_error', code: 'TIMEOUT' }))))
      } else {
        const answer = this.#answer(request, audience, version, latency)
        sched.after(latency, () => finish(() => {
          if (answer instanceof TokenRequestError) reject(answer)
          else resolve(answer())
        }))
      }
      for (const listener of this.#listeners) listener(request)
    })
  }

  /** Decided when the request arrives; a token's life starts when the endpoint issues it. */
  #answer (request: UpstreamRequest, audience: string, version: number, latency: number): TokenRequestError | (() => FetchedToken) {
    const fault = this.fault
    const hour = Math.floor(this.#sched.now / 3_600_000)
    if (hour !== this.#hour) {
      this.#hour = hour
      this.#hourCount = 0
    }
    this.#hourCount++
    if (fault === 'refuse' || version !== this.secretVersion) {
      request.outcome = 'refused'
      return new TokenRequestError('sim-tenant answered 401 access_denied', { kind: 'config_error', code: 'HTTP_401', status: 401, auth0Error: 'access_denied', auth0Description: 'Unauthorized' })
    }
    if (fault === 'rate_limited' || this.#hourCount > this.#opts.quotaPerHour) {
      const seconds = fault === 'rate_limited' ? this.retryAfterS : Math.ceil((3_600_000 - (this.#sched.now % 3_600_000)) / 1000)
      const wait = retryAfter({ 'retry-after': String(seconds) }, 0)!
      request.outcome = 'rate_limited'
      request.retryAfterMs = wait.ms
      return new TokenRequestError('sim-tenant answered 429 too_many_requests', {
        kind: 'http_error', code: 'HTTP_429', status: 429, auth0Error: 'too_many_requests', retryAfterMs: wait.ms,
        ...(wait.capped === undefined ? {} : { retryAfterCapped: wait.capped })
      })
    }
    if (fault === 'server_error') {
      const status = this.#rng.pick([500, 502, 503])
      request.outcome = `http_${status}`
      const wait = status === 503 && this.#rng.chance(0.5) ? this.#rng.int(1, 120) : undefined
      if (wait !== undefined) request.retryAfterMs = wait * 1000
      return new TokenRequestError(`sim-tenant answered ${status}`, { kind: 'http_error', code: `HTTP_${status}`, status, ...(wait === undefined ? {} : { retryAfterMs: wait * 1000 }) })
    }
    let lifetimeS = this.#opts.lifetimeS
    if (fault === 'lie') {
      const { minExpiresInSeconds: min, maxExpiresInSeconds: max } = UPSTREAM_BOUNDS
      lifetimeS = this.#rng.pick([min, min + 1, 30, max, min - 1, max + 1, 0])
      if (lifetimeS < min || lifetimeS > max) {
        request.outcome = `invalid_lifetime_${lifetimeS}`
        return new TokenRequestError(`token endpoint answer rejected: expires_in ${lifetimeS} is outside ${min} s to ${max} s (10 years)`, { kind: 'invalid_response', code: 'INVALID_TOKEN_RESPONSE', status: 200 })
      }
    }
    const id = ++this.#issued
    // Issued half-way through the round trip.
    const issuedAt = this.#sched.now + latency / 2
    const iat = Math.floor((this.#opts.epochMs + issuedAt) / 1000)
    // The API checks `exp`, whole seconds: that is the token's true expiry.
    const token: IssuedToken = { id, audience, host: request.host, issuedAt, expiresAt: (iat + lifetimeS) * 1000 - this.#opts.epochMs, lifetimeS }
    const accessToken = jwt(iat, lifetimeS, audience, id, this.#rng.int(0, 0xffffff))
    this.tokens.set(accessToken, token)
    request.outcome = `token#${id}`
    return () => ({ accessToken, expiresInSeconds: lifetimeS })
  }
}

function b64 (value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** A JWT as Auth0 issues one (the signature is only a marker: nobody verifies it here). */
function jwt (iat: number, lifetimeS: number, audience: string, id: number, salt: number): string {
  return `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: 'https://sim-tenant/', aud: audience, iat, exp: iat + lifetimeS, jti: id })}.${TOKEN_MARK}${id.toString(36)}x${salt.toString(36)}`
}
