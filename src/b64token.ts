/**
 * RFC 6750 §2.1 b64token: what may follow `Bearer ` in an Authorization
 * header. Tokens from the token endpoint, a static token and the sidecar
 * secret all travel there, so all three must match it.
 */
export const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/
