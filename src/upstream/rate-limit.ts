type Headers = Readonly<Record<string, string | string[] | undefined>>

export interface Quota {
  /** e.g. per_hour; absent when Auth0 leaves out the `b=` part. */
  bucket: string | undefined
  limit: number
  remaining: number
  resetSeconds: number
}

/** What Auth0 said about its limits on one token response; fields absent when the header was. */
export interface RateLimitInfo {
  rateLimit?: { limit: number, remaining: number, resetEpochSeconds: number }
  clientQuota?: Quota
  tenantQuota?: Quota
}

function first (headers: Headers, name: string): string | undefined {
  const value = headers[name]
  return Array.isArray(value) ? value[0] : value
}

function number (value: string | undefined): number | undefined {
  if (value === undefined || !/^\d+$/.test(value.trim())) return undefined
  return Number(value)
}

/** Parses `b=per_hour;q=100;r=50;t=3600` (the `b=` part is optional). */
export function parseQuota (value: string | undefined): Quota | undefined {
  if (value === undefined) return undefined
  const fields = new Map<string, string>()
  for (const part of value.split(';')) {
    const eq = part.indexOf('=')
    if (eq > 0) fields.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim())
  }
  const limit = number(fields.get('q'))
  const remaining = number(fields.get('r'))
  const resetSeconds = number(fields.get('t'))
  if (limit === undefined || remaining === undefined || resetSeconds === undefined) return undefined
  return { bucket: fields.get('b'), limit, remaining, resetSeconds }
}

/** Auth0's rate-limit and M2M quota headers, from any token response, success or error. */
export function parseRateLimit (headers: Headers): RateLimitInfo {
  const info: RateLimitInfo = {}
  const limit = number(first(headers, 'x-ratelimit-limit'))
  const remaining = number(first(headers, 'x-ratelimit-remaining'))
  const reset = number(first(headers, 'x-ratelimit-reset'))
  if (limit !== undefined && remaining !== undefined && reset !== undefined) {
    info.rateLimit = { limit, remaining, resetEpochSeconds: reset }
  }
  const clientQuota = parseQuota(first(headers, 'auth0-client-quota-limit'))
  if (clientQuota !== undefined) info.clientQuota = clientQuota
  const tenantQuota = parseQuota(first(headers, 'auth0-tenant-quota-limit'))
  if (tenantQuota !== undefined) info.tenantQuota = tenantQuota
  return info
}

/** Below this share of a quota or rate limit left, the sidecar warns. */
export const LOW_QUOTA_FRACTION = 0.1

/** The limits on a response that are nearly used up, for the warning log line. */
export function lowQuotas (info: RateLimitInfo): Array<{ scope: string, remaining: number, limit: number, reset_seconds?: number, bucket?: string }> {
  const low = []
  if (info.rateLimit !== undefined && info.rateLimit.remaining < info.rateLimit.limit * LOW_QUOTA_FRACTION) {
    low.push({ scope: 'rate_limit', remaining: info.rateLimit.remaining, limit: info.rateLimit.limit })
  }
  for (const [scope, quota] of [['client_quota', info.clientQuota], ['tenant_quota', info.tenantQuota]] as const) {
    if (quota !== undefined && quota.remaining < quota.limit * LOW_QUOTA_FRACTION) {
      low.push({ scope, remaining: quota.remaining, limit: quota.limit, reset_seconds: quota.resetSeconds, ...(quota.bucket === undefined ? {} : { bucket: quota.bucket }) })
    }
  }
  return low
}
