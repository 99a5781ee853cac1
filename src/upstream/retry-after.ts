type Headers = Readonly<Record<string, string | string[] | undefined>>

function header (headers: Headers, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

/**
 * How long the token endpoint asked us to wait, in ms: `Retry-After` (seconds
 * or an HTTP date), else on 429 Auth0's `x-ratelimit-reset` (epoch seconds).
 */
export function retryAfterMs (headers: Headers, status: number, nowMs: number): number | undefined {
  const retryAfter = header(headers, 'retry-after')?.trim()
  if (retryAfter !== undefined && retryAfter !== '') {
    if (/^\d+$/.test(retryAfter)) return Number(retryAfter) * 1000
    const date = Date.parse(retryAfter)
    if (!Number.isNaN(date)) return Math.max(0, date - nowMs)
  }
  if (status === 429) {
    const reset = header(headers, 'x-ratelimit-reset')?.trim()
    if (reset !== undefined && /^\d+$/.test(reset)) return Math.max(0, Number(reset) * 1000 - nowMs)
  }
  return undefined
}
