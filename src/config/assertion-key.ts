import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'

/** The JWS algorithms a client assertion is signed with, by key type (RFC 7518 §3.1). */
export type AssertionAlg = 'RS256' | 'ES256'

export interface AssertionKey {
  readonly key: KeyObject
  readonly alg: AssertionAlg
}

/** Smallest RSA modulus accepted: NIST and Auth0 both require 2048 bits. */
export const MIN_RSA_BITS = 2048

/**
 * Why a private_key_jwt key cannot be used, in words that never hold the
 * key. The caller adds the variable's name.
 */
export class AssertionKeyError extends Error {
  constructor (reason: string) {
    super(reason)
    this.name = 'AssertionKeyError'
  }
}

/**
 * A PEM value as operators paste it: a secret store or a one-line .env file
 * may hold the newlines as the two characters `\n`.
 */
function pemText (value: string): string {
  return value.includes('\n') ? value : value.replaceAll('\\n', '\n')
}

/**
 * Parses the client-assertion signing key: an unencrypted PEM private key
 * (PKCS#8; the older PKCS#1 and SEC1 forms work too), RSA of at least 2048
 * bits (RS256) or EC P-256 (ES256).
 */
export function parseAssertionKey (value: string): AssertionKey {
  const pem = pemText(value.trim())
  if (!pem.startsWith('-----BEGIN ')) {
    throw new AssertionKeyError('expected a PEM private key starting with -----BEGIN PRIVATE KEY-----')
  }
  if (pem.startsWith('-----BEGIN ENCRYPTED PRIVATE KEY-----')) {
    throw new AssertionKeyError('the private key is encrypted with a passphrase; give the unencrypted PKCS#8 key (openssl pkcs8 -topk8 -nocrypt)')
  }
  let key: KeyObject
  try {
    key = createPrivateKey({ key: pem, format: 'pem' })
  } catch {
    if (isPublicKey(pem)) {
      throw new AssertionKeyError('this is a public key or certificate; the sidecar needs the private key (register the public key with the authorization server)')
    }
    throw new AssertionKeyError('not a readable PEM private key')
  }
  const type = key.asymmetricKeyType
  // Node fills in the details for every RSA and EC key.
  const details = key.asymmetricKeyDetails!
  if (type === 'rsa') {
    const bits = details.modulusLength!
    if (bits < MIN_RSA_BITS) throw new AssertionKeyError(`the RSA key has ${bits} bits; at least ${MIN_RSA_BITS} are required`)
    return Object.freeze({ key, alg: 'RS256' })
  }
  if (type === 'ec') {
    if (details.namedCurve !== 'prime256v1') {
      throw new AssertionKeyError(`the EC key is on curve ${String(details.namedCurve)}; only P-256 (prime256v1, ES256) is supported`)
    }
    return Object.freeze({ key, alg: 'ES256' })
  }
  throw new AssertionKeyError(`a ${String(type)} key is not supported; use an RSA key of at least ${MIN_RSA_BITS} bits (RS256) or an EC P-256 key (ES256)`)
}

function isPublicKey (pem: string): boolean {
  try {
    createPublicKey({ key: pem, format: 'pem' })
    return true
  } catch {
    return false
  }
}
