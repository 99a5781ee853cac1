/**
 * The shared secret clients present. The comparison runs over the expected
 * secret's length whatever is presented, with no early exit and no
 * allocation: its time says nothing about the secret's content or length,
 * and it costs GET /token less than Buffer.from + timingSafeEqual
 * (see docs/benchmarks.md).
 */
export class SidecarSecret {
  #expected: string

  constructor (secret: string) {
    this.#expected = secret
  }

  /** Takes effect for the next request (secret rotation). */
  set (secret: string): void {
    this.#expected = secret
  }

  matches (presented: string): boolean {
    const expected = this.#expected
    const length = expected.length
    // Past the end of `presented`, charCodeAt gives NaN, which `^` reads as 0; the length check decides then.
    let diff = presented.length ^ length
    for (let i = 0; i < length; i++) diff |= expected.charCodeAt(i) ^ presented.charCodeAt(i)
    return diff === 0
  }
}

/** The credentials of an `Authorization: Bearer <credentials>` header, scheme case-insensitive. */
export function bearerCredentials (header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined
  if (header.charCodeAt(6) !== 32 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined
  const credentials = header.slice(7).trim()
  return credentials === '' ? undefined : credentials
}
