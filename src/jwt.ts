/**
 * The `exp` claim of a JWT, in seconds as written, or undefined when the
 * token is not a JWT (opaque or encrypted) or carries no numeric `exp`. Not
 * verified: we only need to know when to stop serving it. A leaf module, so
 * config and the store read it without importing the engine.
 */
export function jwtExp (token: string): number | undefined {
  const parts = token.split('.')
  if (parts.length !== 3) return undefined
  try {
    const payload: unknown = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'))
    const exp = (payload as { exp?: unknown } | null)?.exp
    return typeof exp === 'number' ? exp : undefined
  } catch {
    return undefined
  }
}

/** Largest epoch ms a Date can hold. */
export const MAX_DATE_MS = 8.64e15

/** A JWT `exp` (seconds) as epoch ms, or undefined when no Date can hold it. */
export function expiryMs (exp: number): number | undefined {
  const ms = exp * 1000
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? ms : undefined
}
