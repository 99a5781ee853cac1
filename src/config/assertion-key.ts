import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'
import { SidecarFailure } from '../errors.js'

/**
 * The JWS algorithms a client assertion can be signed with (RFC 7518 §3):
 * RS256, RS384 and PS256 with an RSA key (the three Auth0 accepts), ES256
 * with an EC P-256 key (for other servers).
 */
export const ASSERTION_ALGS = ['RS256', 'RS384', 'PS256', 'ES256'] as const
export type AssertionAlg = typeof ASSERTION_ALGS[number]
const RSA_ALGS: readonly AssertionAlg[] = ['RS256', 'RS384', 'PS256']

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
export class AssertionKeyError extends SidecarFailure {
  constructor (reason: string, code = 'ASSERTION_KEY_UNUSABLE') {
    super(reason, code)
  }
}

/** A usable key that cannot sign with the algorithm asked for. */
export class AssertionAlgError extends AssertionKeyError {
  readonly alg: AssertionAlg

  constructor (alg: AssertionAlg, reason: string) {
    super(reason, 'ASSERTION_ALG_MISMATCH')
    this.alg = alg
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
 * bits (RS256 unless `alg` says RS384 or PS256) or EC P-256 (ES256). An
 * `alg` the key cannot sign with is an AssertionAlgError.
 */
export function parseAssertionKey (value: string, alg?: AssertionAlg): AssertionKey {
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
    if (alg !== undefined && !RSA_ALGS.includes(alg)) {
      throw new AssertionAlgError(alg, `an RSA key (${bits} bits) signs RS256, RS384 or PS256, not ${alg}; ${alg} needs an EC P-256 key`)
    }
    return Object.freeze({ key, alg: alg ?? 'RS256' })
  }
  if (type === 'ec') {
    if (details.namedCurve !== 'prime256v1') {
      throw new AssertionKeyError(`the EC key is on curve ${String(details.namedCurve)}; only P-256 (prime256v1, ES256) is supported`)
    }
    if (alg !== undefined && alg !== 'ES256') {
      throw new AssertionAlgError(alg, `an EC P-256 key signs ES256, not ${alg}; ${alg} needs an RSA key of at least ${MIN_RSA_BITS} bits`)
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
