import type { Socket } from 'node:net'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { bearerCredentials, type SidecarSecret } from './sidecar-secret.js'

/** A misconfigured client polls on every request; one warning a minute is enough to notice it. */
const REJECTION_LOG_INTERVAL_MS = 60_000

export interface SecretGuardOptions {
  /**
   * Where rejections are logged, with the request id. Defaults to the
   * request's logger, which is a silent one when Fastify was given none.
   */
  logger?: { warn(obj: object, msg: string): void }
  /** Told of the connection of every request that presented the right secret (ConnectionGuard.authenticated). */
  onAccepted?: (socket: Socket) => void
}

/**
 * The sidecar-secret check, called first thing in the token handlers (a
 * function call costs less than an onRequest hook on the hot path). Returns
 * true when the request may go on; otherwise it has answered 401 with
 * WWW-Authenticate.
 */
export function secretGuard (secret: SidecarSecret, onRejected: (request: FastifyRequest) => void, opts: SecretGuardOptions = {}) {
  let lastLoggedAt = -Infinity
  let suppressed = 0
  const { onAccepted } = opts

  return function allowed (request: FastifyRequest, reply: FastifyReply): boolean {
    const presented = bearerCredentials(request.headers.authorization)
    if (presented !== undefined && secret.matches(presented)) {
      onAccepted?.(request.raw.socket)
      return true
    }
    onRejected(request)
    const reason = presented === undefined ? 'missing_credentials' : 'wrong_secret'
    // Monotonic: a wall-clock step must not silence (or unleash) these lines.
    const now = performance.now()
    if (now - lastLoggedAt >= REJECTION_LOG_INTERVAL_MS) {
      const log = opts.logger ?? request.log
      log.warn({ event: 'auth_rejected', reqId: request.id, reason, remote_address: request.ip, url: request.routeOptions.url, suppressed }, 'rejected a token request without the right sidecar secret')
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
    return false
  }
}
