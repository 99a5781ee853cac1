/** Bounds of the proxy that are not settings; documented in the README under "Credential-injecting proxy". */
export const PROXY_LIMITS = Object.freeze({
  /**
   * Request bodies up to this size (by Content-Length) are read before they
   * are forwarded, so a request the API rejects with 401 can be sent again
   * with a new token; larger or chunked bodies stream through, and their
   * 401 is passed back.
   */
  retryBufferBytes: 65_536,
  /** Until the request headers are in. */
  headersTimeoutMs: 10_000,
  /** Until the whole request, body included, is in. */
  requestTimeoutMs: 60_000,
  /** Longer than common client keep-alive expiries, as on the token port. */
  keepAliveTimeoutMs: 65_000,
  /**
   * On shutdown, requests in flight get this long to finish before their
   * connections are closed: a server-sent event stream never ends by itself,
   * and this is inside the shutdown grace period.
   */
  drainMs: 3_000
})
