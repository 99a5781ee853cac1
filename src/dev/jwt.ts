import { sign, type KeyObject } from 'node:crypto'

function segment (value: object): string {
  return Buffer.from(JSON.stringify(value)).toString('base64url')
}

/** A compact RS256 JWS, as Auth0 issues access tokens. */
export function signRs256 (payload: object, privateKey: KeyObject, kid: string): string {
  const signingInput = `${segment({ alg: 'RS256', typ: 'JWT', kid })}.${segment(payload)}`
  return `${signingInput}.${sign('sha256', Buffer.from(signingInput), privateKey).toString('base64url')}`
}
