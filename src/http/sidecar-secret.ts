import { timingSafeEqual } from 'node:crypto'

/**
 * The shared secret clients present, compared with timingSafeEqual. Only the
 * length can leak through timing, and the length is no secret: it is the
 * documented `openssl rand -hex 32` shape. Hashing both sides would hide it
 * too, at a measurable cost on every GET /token.
 */
export class SidecarSecret {
  #expected: Buffer

  constructor (secret: string) {
    this.#expected = Buffer.from(secret)
  }

  /** Takes effect for the next request (secret rotation). */
  set (secret: string): void {
    this.#expected = Buffer.from(secret)
  }

  matches (presented: string): boolean {
    const candidate = Buffer.from(presented)
    if (candidate.length !== this.#expected.length) return false
    return timingSafeEqual(candidate, this.#expected)
  }
}

/** The credentials of an `Authorization: Bearer <credentials>` header, scheme case-insensitive. */
export function bearerCredentials (header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined
  if (header.charCodeAt(6) !== 32 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined
  const credentials = header.slice(7).trim()
  return credentials === '' ? undefined : credentials
}
