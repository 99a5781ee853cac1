import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto'

// v2: the issued lifetime and the store-clock issue time replaced v1's peer wall-clock expiry.
const VERSION = 'v2'
const IV_BYTES = 12
const TAG_BYTES = 16
const SALT = 'toolbridge-token-sidecar token store'

/** What a store entry holds, encrypted. No peer's wall clock: times are the store's own. */
export interface StoredToken {
  accessToken: string
  /** The lifetime the token endpoint issued (expires_in), ms. */
  lifetimeMs: number
  /** The store's clock (epoch ms) when the token was asked for: orders entries, and bounds a replayed one. */
  issuedAt: number
}

/**
 * Seals store entries with AES-256-GCM under a key derived (HKDF-SHA-256)
 * from the client credential, bound to the entry's key as associated data:
 * whoever reads the store without the credential learns nothing, cannot plant
 * a token and cannot move an entry to another key.
 */
export class EntryCipher {
  readonly #key: Buffer

  /** `credential`: the client secret, or the private key's DER for private_key_jwt. */
  constructor (credential: Buffer) {
    this.#key = Buffer.from(hkdfSync('sha256', credential, SALT, 'store entry encryption v1', 32))
  }

  seal (token: StoredToken, boundTo: string): string {
    const iv = randomBytes(IV_BYTES)
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv).setAAD(Buffer.from(boundTo))
    const sealed = Buffer.concat([cipher.update(JSON.stringify({ t: token.accessToken, l: token.lifetimeMs, i: token.issuedAt })), cipher.final()])
    return `${VERSION}.${Buffer.concat([iv, sealed, cipher.getAuthTag()]).toString('base64url')}`
  }

  /** The token, or undefined for anything that does not decrypt under this key to a well-formed entry. */
  open (text: string, boundTo: string): StoredToken | undefined {
    if (!text.startsWith(`${VERSION}.`)) return undefined
    const raw = Buffer.from(text.slice(VERSION.length + 1), 'base64url')
    if (raw.length < IV_BYTES + TAG_BYTES + 1) return undefined
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, IV_BYTES)).setAAD(Buffer.from(boundTo))
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES))
      const plain = Buffer.concat([decipher.update(raw.subarray(IV_BYTES, raw.length - TAG_BYTES)), decipher.final()])
      const { t, l, i } = JSON.parse(plain.toString('utf8')) as { t?: unknown, l?: unknown, i?: unknown }
      return typeof t === 'string' && t !== '' && finite(l) && l > 0 && finite(i) ? { accessToken: t, lifetimeMs: l, issuedAt: i } : undefined
    } catch {
      return undefined
    }
  }
}

function finite (value: unknown): value is number {
  return typeof value === 'number' && Number.isFinite(value)
}
