import { UPSTREAM_BOUNDS } from '../engine/schedule.js'
import { firstHeader, type Headers } from './headers.js'
import type { Quota } from './rate-limit.js'

export interface RetryAfter {
  ms: number
  /** What the server sent (shortened), when it asked for longer than UPSTREAM_BOUNDS.maxRetryAfterMs. */
  capped?: string
}

function bounded (ms: number, raw: string): RetryAfter {
  if (ms <= UPSTREAM_BOUNDS.maxRetryAfterMs) return { ms: Math.max(0, ms) }
  return { ms: UPSTREAM_BOUNDS.maxRetryAfterMs, capped: raw.slice(0, 64) }
}

/**
 * How long an error answer asked us to wait: `Retry-After` (seconds or an
 * HTTP date), else Auth0's `x-ratelimit-reset` (epoch seconds) on whatever
 * status carries it (Auth0 has answered a spent global limit with a 500). At
 * most an hour: a server (or a proxy) that asks for more is not believed.
 */
export function retryAfter (headers: Headers, nowMs: number): RetryAfter | undefined {
  const value = firstHeader(headers, 'retry-after')?.trim()
  if (value !== undefined && value !== '') {
    if (/^\d+$/.test(value)) return bounded(Number(value) * 1000, `Retry-After: ${value}`)
    const date = Date.parse(value)
    if (!Number.isNaN(date)) return bounded(date - nowMs, `Retry-After: ${value}`)
  }
  const reset = firstHeader(headers, 'x-ratelimit-reset')?.trim()
  if (reset !== undefined && /^\d+$/.test(reset)) return bounded(Number(reset) * 1000 - nowMs, `x-ratelimit-reset: ${reset}`)
  return undefined
}

/** Until a spent quota bucket resets, at most an hour like any other wait. */
export function quotaReset (quota: Quota): RetryAfter {
  return bounded(quota.resetSeconds * 1000, `Auth0-${quota.scope === 'client' ? 'Client' : 'Organization'}-Quota-Limit: b=${quota.bucket};t=${quota.resetSeconds}`)
}

/** The longer of two waits: a quota reset never shortens a Retry-After, nor the other way round. */
export function longest (a: RetryAfter | undefined, b: RetryAfter | undefined): RetryAfter | undefined {
  if (a === undefined) return b
  if (b === undefined) return a
  return b.ms > a.ms ? b : a
}
