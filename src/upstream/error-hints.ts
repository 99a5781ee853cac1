import type { ClientAuth } from './client-auth.js'
import type { Quota } from './rate-limit.js'

export interface RefusalContext {
  clientAuth: ClientAuth
  audience: string
  scope: string | undefined
}

/** What proves the client under each method, in the words of the settings an operator changes. */
function credentialsToCheck ({ clientAuth }: RefusalContext): string {
  const method = `that the client is registered for ${clientAuth.method} (TOOLBRIDGE_AUTH0_CLIENT_AUTH)`
  if (clientAuth.method === 'private_key_jwt') {
    return `the client id, the public key registered for it, the assertion's aud (TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE) and alg (TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG), and ${method}`
  }
  const basic = clientAuth.formEncoded === true
    ? '; the id or secret has characters Basic form-encodes (RFC 6749 §2.3.1) and some servers do not decode: try client_secret_post'
    : ''
  return `the client id and secret, and ${method}${basic}`
}

/**
 * A 401 or 403 without an OAuth `error`: some servers answer a wrong secret,
 * a wrong method, a bad assertion and a missing grant alike with an empty
 * body. Names what to check for that status, and guesses no further.
 */
export function unexplainedRefusal (status: 401 | 403, context: RefusalContext): string {
  const credentials = credentialsToCheck(context)
  if (status === 401) return `no OAuth error in the answer; check ${credentials}`
  const scope = context.scope === undefined ? '' : ` and the scope "${context.scope}"`
  return `no OAuth error in the answer; check that the client is granted the audience ${context.audience}${scope}, and ${credentials}`
}

/** A 429 for a spent M2M token quota: which bucket, and when it resets. */
export function spentQuota (quota: Quota): string {
  return `the ${quota.scope} quota's ${quota.bucket} bucket (${quota.limit} tokens) is used up; it resets in ${quota.resetSeconds} s`
}
