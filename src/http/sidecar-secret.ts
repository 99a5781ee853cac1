/** 0 when `presented` is `expected`; the loop runs over `expected`'s length whatever is presented. */
function difference (expected: string, presented: string): number {
  const length = expected.length
  // Past the end of `presented`, charCodeAt gives NaN, which `^` reads as 0; the length check decides then.
  let diff = presented.length ^ length
  for (let i = 0; i < length; i++) diff |= expected.charCodeAt(i) ^ presented.charCodeAt(i)
  return diff
}

/**
 * The shared secret clients present, and during a rotation the previous one
 * (TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS). The comparison runs over the expected
 * secret's length whatever is presented, with no early exit and no
 * allocation: its time says nothing about the secret's content or length,
 * and it costs GET /token less than Buffer.from + timingSafeEqual
 * (see docs/benchmarks.md). With a previous secret both are always compared.
 */
export class SidecarSecret {
  #expected: string
  #previous: string | undefined

  constructor (secret: string, previous?: string) {
    this.#expected = secret
    this.#previous = previous
  }

  /** Takes effect for the next request (secret rotation). */
  set (secret: string): void {
    this.#expected = secret
  }

  /** Also accepted until unset: the secret the clients held before a rotation. Takes effect for the next request. */
  setPrevious (previous: string | undefined): void {
    this.#previous = previous
  }

  matches (presented: string): boolean {
    const current = difference(this.#expected, presented)
    const previous = this.#previous
    if (previous === undefined) return current === 0
    // Both comparisons run before either result is looked at, so the time does not tell which secret matched.
    const matchesPrevious = difference(previous, presented) === 0
    return current === 0 || matchesPrevious
  }
}

/** The credentials of an `Authorization: Bearer <credentials>` header, scheme case-insensitive. */
export function bearerCredentials (header: string | undefined): string | undefined {
  if (header === undefined || header.length < 8) return undefined
  if (header.charCodeAt(6) !== 32 || header.slice(0, 6).toLowerCase() !== 'bearer') return undefined
  const credentials = header.slice(7).trim()
  return credentials === '' ? undefined : credentials
}
