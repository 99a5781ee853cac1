import { UPSTREAM_BOUNDS } from '../engine/schedule.js'

type Headers = Readonly<Record<string, string | string[] | undefined>>

function header (headers: Headers, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

export interface RetryAfter {
  ms: number
  /** The header as sent (shortened), when it asked for longer than UPSTREAM_BOUNDS.maxRetryAfterMs. */
  capped?: string
}

function bounded (ms: number, raw: string): RetryAfter {
  if (ms <= UPSTREAM_BOUNDS.maxRetryAfterMs) return { ms: Math.max(0, ms) }
  return { ms: UPSTREAM_BOUNDS.maxRetryAfterMs, capped: raw.slice(0, 64) }
}

/**
 * How long the token endpoint asked us to wait: `Retry-After` (seconds or an
 * HTTP date), else on 429 Auth0's `x-ratelimit-reset` (epoch seconds). At most
 * an hour: a server (or a proxy) that asks for more is not believed.
 */
export function retryAfter (headers: Headers, status: number, nowMs: number): RetryAfter | undefined {
  const value = header(headers, 'retry-after')?.trim()
  if (value !== undefined && value !== '') {
    if (/^\d+$/.test(value)) return bounded(Number(value) * 1000, `Retry-After: ${value}`)
    const date = Date.parse(value)
    if (!Number.isNaN(date)) return bounded(date - nowMs, `Retry-After: ${value}`)
  }
  if (status === 429) {
    const reset = header(headers, 'x-ratelimit-reset')?.trim()
    if (reset !== undefined && /^\d+$/.test(reset)) return bounded(Number(reset) * 1000 - nowMs, `x-ratelimit-reset: ${reset}`)
  }
  return undefined
}
