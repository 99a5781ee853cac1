import { firstHeader, listHeader, type Headers } from './headers.js'

/** Whose M2M token quota: the application's, or the organization's (requests with TOOLBRIDGE_AUTH0_ORGANIZATION). */
export type QuotaScope = 'client' | 'organization'

/** One bucket of an Auth0 fine-grained M2M token quota, e.g. the application's hourly one. */
export interface Quota {
  scope: QuotaScope
  /** `per_hour`, `per_day`, or whatever else Auth0 names it; `unspecified` when it names none. */
  bucket: string
  limit: number
  remaining: number
  resetSeconds: number
}

/** What Auth0 said about its limits on one token response. */
export interface RateLimitInfo {
  /** Absent unless all three `x-ratelimit-*` headers were readable. */
  rateLimit?: { limit: number, remaining: number, resetEpochSeconds: number }
  /** Every readable quota bucket, the client's first; empty without quota headers. */
  quotas: Quota[]
}

/** One header per scope, one comma-separated part per bucket (../shared/AUTH0.md). */
const QUOTA_HEADERS: ReadonlyArray<readonly [QuotaScope, string]> = [
  ['client', 'auth0-client-quota-limit'],
  ['organization', 'auth0-organization-quota-limit']
]
/** A bucket name becomes a metric label and a log field: only plain names are taken. */
const BUCKET_NAME = /^[A-Za-z0-9_.-]{1,64}$/

function count (value: string | undefined): number | undefined {
  const text = value?.trim()
  if (text === undefined || !/^\d{1,15}$/.test(text)) return undefined
  return Number(text)
}

/**
 * Parses `b=per_hour;q=10;r=7;t=3540,b=per_day;q=50;r=47;t=43200`: split on
 * `,` into buckets, then on `;` into fields, as Auth0's SDKs do. A bucket
 * may also be named by a bare first field (`per_hour;q=10;…`). A part without
 * all of `q`, `r` and `t` as whole numbers, or with an odd name, is skipped.
 */
export function parseQuota (value: string | undefined, scope: QuotaScope): Quota[] {
  if (value === undefined) return []
  const quotas: Quota[] = []
  for (const part of value.split(',')) {
    const fields = new Map<string, string>()
    let bare: string | undefined
    for (const [i, field] of part.split(';').entries()) {
      const eq = field.indexOf('=')
      if (eq < 0) {
        if (i === 0) bare = field.trim()
        continue
      }
      fields.set(field.slice(0, eq).trim().toLowerCase(), field.slice(eq + 1).trim())
    }
    const bucket = fields.get('b') ?? bare ?? 'unspecified'
    const limit = count(fields.get('q'))
    const remaining = count(fields.get('r'))
    const resetSeconds = count(fields.get('t'))
    if (limit === undefined || remaining === undefined || resetSeconds === undefined || !BUCKET_NAME.test(bucket)) continue
    quotas.push({ scope, bucket, limit, remaining, resetSeconds })
  }
  return quotas
}

/** Auth0's rate-limit and M2M quota headers, from any token response, success or error. */
export function parseRateLimit (headers: Headers): RateLimitInfo {
  const info: RateLimitInfo = { quotas: [] }
  const limit = count(firstHeader(headers, 'x-ratelimit-limit'))
  const remaining = count(firstHeader(headers, 'x-ratelimit-remaining'))
  const reset = count(firstHeader(headers, 'x-ratelimit-reset'))
  if (limit !== undefined && remaining !== undefined && reset !== undefined) {
    info.rateLimit = { limit, remaining, resetEpochSeconds: reset }
  }
  for (const [scope, name] of QUOTA_HEADERS) info.quotas.push(...parseQuota(listHeader(headers, name), scope))
  return info
}

/**
 * The bucket a 429 "quota exceeded" answer (e.g. `Client quota exceeded`)
 * waits for: of the scope the answer names (either, when it names neither),
 * a bucket with nothing left; of several, the one that resets last, since a
 * spent day outlasts the hour. Undefined when the answer is not about a quota
 * or no bucket is spent.
 */
export function exhaustedQuota (quotas: readonly Quota[], said: string): Quota | undefined {
  if (!/quota/i.test(said)) return undefined
  const scope = /organi[sz]ation/i.test(said) ? 'organization' : /client/i.test(said) ? 'client' : undefined
  let found: Quota | undefined
  for (const quota of quotas) {
    if (quota.remaining > 0 || (scope !== undefined && quota.scope !== scope)) continue
    if (found === undefined || quota.resetSeconds > found.resetSeconds) found = quota
  }
  return found
}

/** Below this share of a quota or rate limit left, the sidecar warns. */
export const LOW_QUOTA_FRACTION = 0.1

export interface LowLimit {
  scope: 'rate_limit' | 'client_quota' | 'organization_quota'
  remaining: number
  limit: number
  /** Quotas only. */
  bucket?: string
  reset_seconds?: number
}

/** The limits on a response that are nearly used up, for the warning log line. */
export function lowQuotas (info: RateLimitInfo): LowLimit[] {
  const low: LowLimit[] = []
  if (info.rateLimit !== undefined && info.rateLimit.remaining < info.rateLimit.limit * LOW_QUOTA_FRACTION) {
    low.push({ scope: 'rate_limit', remaining: info.rateLimit.remaining, limit: info.rateLimit.limit })
  }
  for (const quota of info.quotas) {
    if (quota.remaining < quota.limit * LOW_QUOTA_FRACTION) {
      low.push({ scope: `${quota.scope}_quota`, bucket: quota.bucket, remaining: quota.remaining, limit: quota.limit, reset_seconds: quota.resetSeconds })
    }
  }
  return low
}
