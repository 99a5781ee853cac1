import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client'
import { type Clock, type ForcedRefusal, type RefreshAttempt, type RefreshObserver, type ServedToken } from '../engine/types.js'
import type { StoreObserver } from '../store/types.js'
import type { RateLimitInfo } from '../upstream/rate-limit.js'
import { remainingMs, systemClock } from '../engine/clock.js'

export interface SidecarMetrics {
  readonly registry: Registry
  /** What one audience's shared-store transport reports to. */
  storeObserver(audience: string): StoreObserver
  /** What one audience's token engine reports to: attempts and forced-refresh refusals, labelled with it. */
  observer(audience: string): RefreshObserver
  /** Counts one 200 of GET /token: the hot path, a plain increment. */
  tokenServed(): void
  /** Counts one answer of GET /token or POST /token/refresh. */
  response(route: string, statusCode: number): void
  rateLimit(info: RateLimitInfo): void
}

/** Where the metrics read token state at scrape time. */
export interface TokenState {
  readonly audiences: readonly string[]
  current(audience: string): ServedToken | undefined
}

/**
 * The sidecar's Prometheus metrics, in a registry of its own (tests build
 * many apps in one process). Token state is read at scrape time, so the hot
 * path only pays for one counter increment. Metrics about a token carry an
 * `audience` label; answers, rate limits and quotas are per client.
 */
export function createMetrics (tokens: TokenState, clock: Clock = systemClock): SidecarMetrics {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  const attempts = new Counter({
    name: 'tokensidecar_token_refresh_attempts_total',
    help: 'Upstream token requests, by result and by what triggered them; each is one M2M token request against the Auth0 quota.',
    labelNames: ['audience', 'result', 'trigger'] as const,
    registers: [registry]
  })
  const duration = new Histogram({
    name: 'tokensidecar_token_request_duration_seconds',
    help: 'Duration of upstream token requests, connect to last byte.',
    labelNames: ['audience', 'result'] as const,
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry]
  })
  const refreshRate = new Gauge({
    name: 'tokensidecar_token_refreshes_per_hour',
    help: 'Refreshes an hour the current schedule amounts to (3600 / seconds until the next refresh after the last success); compare with TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR.',
    labelNames: ['audience'] as const,
    registers: [registry]
  })
  const lifetime = new Gauge({
    name: 'tokensidecar_token_lifetime_seconds',
    help: 'Lifetime (expires_in) of the last token obtained.',
    labelNames: ['audience'] as const,
    registers: [registry]
  })
  new Gauge({
    name: 'tokensidecar_token_expires_in_seconds',
    help: 'Seconds until the served token expires; NaN when no token is held or it has no known expiry.',
    labelNames: ['audience'] as const,
    registers: [registry],
    collect () {
      for (const audience of tokens.audiences) {
        const token = tokens.current(audience)
        const left = token === undefined ? null : remainingMs(token, clock)
        this.set({ audience }, left === null ? Number.NaN : Math.max(0, left / 1000))
      }
    }
  })
  new Gauge({
    name: 'tokensidecar_token_valid',
    help: '1 while the sidecar holds an unexpired token it can serve, else 0.',
    labelNames: ['audience'] as const,
    registers: [registry],
    collect () {
      for (const audience of tokens.audiences) this.set({ audience }, tokens.current(audience) === undefined ? 0 : 1)
    }
  })
  // Plain numbers on the request path; prom-client reads them at scrape time.
  const answered = new Map<string, { route: string, code: string, count: number, reported: number }>()
  const servedOk = { route: '/token', code: '200', count: 0, reported: 0 }
  answered.set('/token 200', servedOk)
  new Counter({
    name: 'tokensidecar_token_responses_total',
    help: 'Answers of the token endpoints, by route and HTTP status code.',
    labelNames: ['route', 'code'] as const,
    registers: [registry],
    collect () {
      for (const entry of answered.values()) {
        if (entry.count === entry.reported && entry !== servedOk) continue
        this.inc({ route: entry.route, code: entry.code }, entry.count - entry.reported)
        entry.reported = entry.count
      }
    }
  })
  const perAudience = (name: string, help: string, label: string) => new Counter({ name, help, labelNames: ['audience', label], registers: [registry] })
  const storeReads = perAudience('tokensidecar_token_store_reads_total', 'Reads of the shared token store, by result: hit (a valid peer token), miss, stale (expiring, or not newer than the token held), undecryptable (another key, or corrupt), oversized (larger than 4 KiB: never parsed), error.', 'result')
  const obtained = perAudience('tokensidecar_tokens_obtained_total', 'Tokens taken into service, by source: upstream (an Auth0 request) or store (adopted from a peer through the shared store).', 'source')
  const lockWaits = perAudience('tokensidecar_token_store_lock_waits_total', 'Waits for a peer that held the fetch lock, by outcome: adopted (its token arrived) or timed_out (fetched directly).', 'result')
  const forcedRefused = new Counter({
    name: 'tokensidecar_forced_refresh_refused_total',
    help: 'POST /token/refresh calls answered with the held token instead of a new fetch, by reason: too_soon (forced-refresh spacing), not_current (the client reported an older token), backoff (a retry or Retry-After wait runs).',
    labelNames: ['audience', 'reason'] as const,
    registers: [registry]
  })
  const rateLimitGauge = (name: string, help: string) => new Gauge({ name, help, registers: [registry] })
  const rateLimitLimit = rateLimitGauge('tokensidecar_auth0_ratelimit_limit', 'Auth0 x-ratelimit-limit on the last token response.')
  const rateLimitRemaining = rateLimitGauge('tokensidecar_auth0_ratelimit_remaining', 'Auth0 x-ratelimit-remaining on the last token response.')
  const rateLimitReset = rateLimitGauge('tokensidecar_auth0_ratelimit_reset_timestamp_seconds', 'Auth0 x-ratelimit-reset (Unix seconds) on the last token response.')
  const quotaGauge = (name: string, help: string) => new Gauge({ name, help, labelNames: ['scope', 'bucket'] as const, registers: [registry] })
  const quotaLimit = quotaGauge('tokensidecar_auth0_quota_limit', 'Auth0 M2M token quota (q) of a bucket, by scope (client, organization) and bucket (per_hour, per_day), from the last token response.')
  const quotaRemaining = quotaGauge('tokensidecar_auth0_quota_remaining', 'Auth0 M2M tokens left in the quota bucket (r).')
  const quotaReset = quotaGauge('tokensidecar_auth0_quota_reset_seconds', 'Seconds until the Auth0 quota bucket resets (t).')

  return {
    registry,
    observer (audience: string): RefreshObserver {
      return {
        attempt (event: RefreshAttempt): void {
          // The engine names the source of every success.
          if (event.source !== undefined) obtained.inc({ audience, source: event.source })
          // A token adopted from the store is no upstream request.
          if (event.source === 'store') return
          attempts.inc({ audience, result: event.result, trigger: event.trigger })
          duration.observe({ audience, result: event.result }, event.durationMs / 1000)
          if (event.lifetimeSeconds !== undefined) lifetime.set({ audience }, event.lifetimeSeconds)
        },
        forcedRefused (reason: ForcedRefusal): void {
          forcedRefused.inc({ audience, reason })
        },
        refreshRate (perHour: number): void {
          refreshRate.set({ audience }, perHour)
        }
      }
    },
    storeObserver (audience: string): StoreObserver {
      return {
        read: (result) => storeReads.inc({ audience, result }),
        lockWait: (result) => lockWaits.inc({ audience, result })
      }
    },
    tokenServed (): void {
      servedOk.count++
    },
    response (route: string, statusCode: number): void {
      const key = `${route} ${statusCode}`
      let entry = answered.get(key)
      if (entry === undefined) {
        entry = { route, code: String(statusCode), count: 0, reported: 0 }
        answered.set(key, entry)
      }
      entry.count++
    },
    rateLimit (info: RateLimitInfo): void {
      if (info.rateLimit !== undefined) {
        rateLimitLimit.set(info.rateLimit.limit)
        rateLimitRemaining.set(info.rateLimit.remaining)
        rateLimitReset.set(info.rateLimit.resetEpochSeconds)
      }
      for (const quota of info.quotas) {
        const labels = { scope: quota.scope, bucket: quota.bucket }
        quotaLimit.set(labels, quota.limit)
        quotaRemaining.set(labels, quota.remaining)
        quotaReset.set(labels, quota.resetSeconds)
      }
    }
  }
}

/** What the credential-injecting proxy reports, per proxied request. */
export interface ProxyMetrics {
  /** One answer to a caller, by method and status class. */
  answered(method: string, statusCode: number): void
  /** Seconds from sending upstream to the API's response headers. */
  upstream(seconds: number): void
  /** One retry after the API rejected a token with 401. */
  retried(): void
  /** Body bytes that went through, by direction. */
  bytes(direction: 'request' | 'response', count: number): void
}

/** Methods labelled by name; any other is `other`, so a caller cannot grow the label set. */
const PROXY_METHODS: ReadonlySet<string> = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'])

/** The proxy's metrics, in the sidecar's registry; plain numbers on the request path, read at scrape time. */
export function createProxyMetrics (registry: Registry): ProxyMetrics {
  const answered = new Map<string, { method: string, statusClass: string, count: number, reported: number }>()
  new Counter({
    name: 'tokensidecar_proxy_requests_total',
    help: 'Requests answered by the credential-injecting proxy, by method and status class (2xx… 5xx), the proxy\'s own answers (401, 502, 503, 504) included.',
    labelNames: ['method', 'status_class'] as const,
    registers: [registry],
    collect () {
      for (const entry of answered.values()) {
        this.inc({ method: entry.method, status_class: entry.statusClass }, entry.count - entry.reported)
        entry.reported = entry.count
      }
    }
  })
  const latency = new Histogram({
    name: 'tokensidecar_proxy_upstream_duration_seconds',
    help: 'Time from sending a request to the API until its response headers arrived.',
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry]
  })
  const retries = new Counter({
    name: 'tokensidecar_proxy_unauthorized_retries_total',
    help: 'Requests sent again with a newer token after the API answered 401.',
    registers: [registry]
  })
  const bytes = { request: 0, response: 0 }
  const reported = { request: 0, response: 0 }
  new Counter({
    name: 'tokensidecar_proxy_body_bytes_total',
    help: 'Body bytes through the proxy, by direction: request (caller to API) or response (API to caller).',
    labelNames: ['direction'] as const,
    registers: [registry],
    collect () {
      for (const direction of ['request', 'response'] as const) {
        this.inc({ direction }, bytes[direction] - reported[direction])
        reported[direction] = bytes[direction]
      }
    }
  })
  return {
    answered (method, statusCode) {
      const name = PROXY_METHODS.has(method) ? method : 'other'
      const statusClass = `${Math.floor(statusCode / 100)}xx`
      const key = `${name} ${statusClass}`
      let entry = answered.get(key)
      if (entry === undefined) {
        entry = { method: name, statusClass, count: 0, reported: 0 }
        answered.set(key, entry)
      }
      entry.count++
    },
    upstream (seconds) {
      latency.observe(seconds)
    },
    retried () {
      retries.inc()
    },
    bytes (direction, count) {
      bytes[direction] += count
    }
  }
}
