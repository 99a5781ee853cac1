import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import { TokenUnavailableError } from '../engine/errors.js'

/** Allowed methods per known path, for 405 answers. */
const ROUTES: Readonly<Record<string, string>> = {
  '/token': 'GET, HEAD',
  '/token/refresh': 'POST',
  '/healthz': 'GET, HEAD',
  '/metrics': 'GET, HEAD'
}

const ERROR_CODES: Readonly<Record<number, string>> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  431: 'headers_too_large'
}

export function notFound (request: FastifyRequest, reply: FastifyReply): void {
  const path = request.url.split('?', 1)[0]!
  const allow = ROUTES[path]
  if (allow !== undefined) {
    void reply.code(405).header('allow', allow).send({
      error: 'method_not_allowed',
      error_description: `${path} accepts ${allow}`
    })
    return
  }
  // The URL is not echoed: a client may have put a secret in it.
  void reply.code(404).send({
    error: 'not_found',
    error_description: 'no such endpoint; this sidecar serves GET /token, POST /token/refresh, GET /healthz and GET /metrics'
  })
}

/** Maps errors to OAuth-style JSON; 5xx never reveals internals. */
export function errorHandler (err: FastifyError | TokenUnavailableError, request: FastifyRequest, reply: FastifyReply): object {
  void reply.header('cache-control', 'no-store')
  if (err instanceof TokenUnavailableError) {
    void reply.code(503).header('retry-after', String(err.retryAfterSeconds))
    return { error: 'token_unavailable', error_description: err.message }
  }
  const status = err.statusCode ?? 500
  if (status >= 500) {
    request.log.error({ err, reqId: request.id }, 'unexpected error while handling a request')
    void reply.code(500)
    return { error: 'internal_error', error_description: 'unexpected error; see the sidecar log' }
  }
  void reply.code(status)
  return { error: ERROR_CODES[status] ?? 'invalid_request', error_description: err.message }
}
