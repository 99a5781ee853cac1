import { createHash, timingSafeEqual } from 'node:crypto'

function digest (value: string): Buffer {
  return createHash('sha256').update(value).digest()
}

/**
 * The shared secret clients present. Compared as SHA-256 digests with
 * timingSafeEqual, so neither the content nor the length leaks through timing.
 */
export class SidecarSecret {
  #digest: Buffer

  constructor (secret: string) {
    this.#digest = digest(secret)
  }

  /** Takes effect for the next request (secret rotation). */
  set (secret: string): void {
    this.#digest = digest(secret)
  }

  matches (presented: string): boolean {
    return timingSafeEqual(digest(presented), this.#digest)
  }
}

/** The credentials of an `Authorization: Bearer <credentials>` header, scheme case-insensitive. */
export function bearerCredentials (header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined
  if (header.charCodeAt(6) !== 32 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined
  const credentials = header.slice(7).trim()
  return credentials === '' ? undefined : credentials
}
