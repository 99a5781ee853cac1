import type { IncomingHttpHeaders } from 'node:http'

/**
 * Hop-by-hop headers (RFC 9110 §7.6.1, and the older ones RFC 2616 named),
 * which describe one connection and never travel further. `expect` is
 * answered by this server itself (undici refuses to send it), and
 * `proxy-authorization` is meant for a proxy, never for the API.
 */
const REQUEST_HOP_BY_HOP = ['keep-alive', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authorization', 'expect', 'http2-settings'] as const
const RESPONSE_HOP_BY_HOP = ['connection', 'keep-alive', 'proxy-connection', 'trailer', 'transfer-encoding', 'upgrade', 'proxy-authenticate'] as const

/**
 * The headers to send upstream. @fastify/reply-from has already copied the
 * caller's headers, dropped `connection` and the headers it names, and set
 * `host` to the target; this drops the other hop-by-hop headers and puts the
 * access token where the sidecar secret was.
 */
export function upstreamHeaders (headers: IncomingHttpHeaders, accessToken: string): IncomingHttpHeaders {
  for (const name of REQUEST_HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name]
  headers.authorization = `Bearer ${accessToken}`
  return headers
}

/** The API's response headers to pass back, without its hop-by-hop ones. */
export function downstreamHeaders<T extends Record<string, unknown>> (headers: T): T {
  for (const name of RESPONSE_HOP_BY_HOP) if (headers[name] !== undefined) delete headers[name]
  return headers
}
