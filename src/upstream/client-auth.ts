import { randomUUID } from 'node:crypto'
import type { AssertionKey } from '../config/assertion-key.js'
import type { Credentials } from '../config/load-config.js'

export const JWT_BEARER_ASSERTION = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
/** A client assertion is good for this long: one request, with room for clock skew and a slow network. */
export const ASSERTION_LIFETIME_SECONDS = 60

/** What one token request carries to authenticate the client: form fields and headers. */
export interface ClientProof {
  fields: Array<[string, string]>
  headers: Record<string, string>
}

/** One way of authenticating the client to the token endpoint (RFC 6749 §2.3, RFC 7523 §2.2). */
export interface ClientAuth {
  readonly method: 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt'
  /** client_secret_basic: true when form-encoding changed the id or the secret, which a server must decode. */
  readonly formEncoded?: boolean
  proof(): Promise<ClientProof> | ClientProof
}

/** application/x-www-form-urlencoded encoding of one value, as RFC 6749 Appendix B asks of Basic's parts. */
function formEncode (value: string): string {
  return new URLSearchParams([['', value]]).toString().slice(1)
}

/** client_secret_post: the id and secret as form fields. */
export function secretPost (clientId: string, clientSecret: string): ClientAuth {
  const proof = { fields: [['client_id', clientId], ['client_secret', clientSecret]] as Array<[string, string]>, headers: {} }
  return { method: 'client_secret_post', proof: () => proof }
}

/**
 * client_secret_basic: `Authorization: Basic` of the form-encoded id and
 * secret (RFC 6749 §2.3.1); neither in the body. A server that does not
 * decode them rejects an id or secret with `+ / : ~ %` or a space.
 */
export function secretBasic (clientId: string, clientSecret: string): ClientAuth {
  const id = formEncode(clientId)
  const secret = formEncode(clientSecret)
  const basic = Buffer.from(`${id}:${secret}`).toString('base64')
  const proof = { fields: [], headers: { authorization: `Basic ${basic}` } }
  return { method: 'client_secret_basic', formEncoded: id !== clientId || secret !== clientSecret, proof: () => proof }
}

export interface PrivateKeyJwtOptions {
  clientId: string
  key: AssertionKey
  kid: string | undefined
  /** The assertion's `aud`: Auth0 wants https://<domain>/, other servers their issuer or token URL. */
  audience: string
  /** Wall time in ms, for `iat` and `exp`. */
  now?: () => number
}

/**
 * private_key_jwt: a fresh JWT signed with the client's private key for
 * every request, so no shared secret ever leaves the sidecar. `client_id` is
 * sent too (RFC 7521 §4.2 allows it; some servers need it to find the key).
 */
export function privateKeyJwt (opts: PrivateKeyJwtOptions): ClientAuth {
  const now = opts.now ?? Date.now
  return {
    method: 'private_key_jwt',
    async proof () {
      // Loaded on first use: only private_key_jwt needs it, and start-up stays light.
      const { SignJWT } = await import('jose')
      const iat = Math.floor(now() / 1000)
      const assertion = await new SignJWT({})
        .setProtectedHeader({ alg: opts.key.alg, typ: 'JWT', ...(opts.kid === undefined ? {} : { kid: opts.kid }) })
        .setIssuer(opts.clientId)
        .setSubject(opts.clientId)
        .setAudience(opts.audience)
        .setIssuedAt(iat)
        .setExpirationTime(iat + ASSERTION_LIFETIME_SECONDS)
        .setJti(randomUUID())
        .sign(opts.key.key)
      return {
        fields: [['client_id', opts.clientId], ['client_assertion_type', JWT_BEARER_ASSERTION], ['client_assertion', assertion]],
        headers: {}
      }
    }
  }
}

/** The client authentication the credentials configure. */
export function clientAuthFor (credentials: Credentials): ClientAuth {
  const { clientId, clientSecret, assertion } = credentials
  switch (credentials.method) {
    case 'client_secret_basic':
      return secretBasic(clientId, clientSecret!)
    case 'private_key_jwt':
      return privateKeyJwt({ clientId, key: assertion!.key, kid: assertion!.kid, audience: assertion!.audience })
    default:
      return secretPost(clientId, clientSecret!)
  }
}
