import type { FastifyReply, FastifyRequest, HookHandlerDoneFunction } from 'fastify'
import { bearerCredentials, type SidecarSecret } from './sidecar-secret.js'

/** A misconfigured client polls on every request; one warning a minute is enough to notice it. */
const REJECTION_LOG_INTERVAL_MS = 60_000

/** onRequest hook: 401 with WWW-Authenticate unless the request carries the sidecar secret. */
export function requireSecret (secret: SidecarSecret) {
  let lastLoggedAt = -Infinity
  let suppressed = 0

  return function checkSecret (request: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction): void {
    const presented = bearerCredentials(request.headers.authorization)
    if (presented !== undefined && secret.matches(presented)) {
      done()
      return
    }
    const reason = presented === undefined ? 'missing_credentials' : 'wrong_secret'
    // Monotonic: a wall-clock step must not silence (or unleash) these lines.
    const now = performance.now()
    if (now - lastLoggedAt >= REJECTION_LOG_INTERVAL_MS) {
      request.log.warn({ event: 'auth_rejected', reqId: request.id, reason, remote_address: request.ip, url: request.routeOptions.url, suppressed }, 'rejected a token request without the right sidecar secret')
      lastLoggedAt = now
      suppressed = 0
    } else {
      suppressed++
    }
    void reply
      .code(401)
      .header('www-authenticate', 'Bearer')
      .header('cache-control', 'no-store')
      .send({
        error: 'unauthorized',
        error_description: presented === undefined
          ? 'send the sidecar secret as Authorization: Bearer <secret>'
          : 'the sidecar secret does not match'
      })
  }
}
