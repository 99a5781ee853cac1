import type { KeyObject } from 'node:crypto'
import type { JWTPayload } from 'jose'

/** A compact RS256 JWS, as Auth0 issues access tokens. */
export async function signRs256 (payload: JWTPayload, privateKey: KeyObject, kid: string): Promise<string> {
  // Loaded on first use: only dev mode signs, and the sidecar's start-up stays light.
  const { SignJWT } = await import('jose')
  return new SignJWT(payload).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid }).sign(privateKey)
}
