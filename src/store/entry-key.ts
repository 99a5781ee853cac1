import { createHash } from 'node:crypto'
import type { TokenIdentity } from './types.js'

/** The entry key: the prefix and a SHA-256 that reveals none of the identity. */
export function entryKey (prefix: string, identity: TokenIdentity): string {
  const id = createHash('sha256')
    .update(JSON.stringify([identity.tokenUrl, identity.clientId, identity.audience, identity.organization ?? null, identity.scope ?? null]))
    .digest('hex')
  return `${prefix}${id}`
}
