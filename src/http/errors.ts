import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { TokenUnavailableError } from '../engine/errors.js'
import { SidecarFailure } from '../errors.js'

const ERROR_CODES: Readonly<Record<number, string>> = {
  400: 'invalid_request',
  404: 'not_found',
  405: 'method_not_allowed',
  413: 'payload_too_large',
  415: 'unsupported_media_type',
  431: 'headers_too_large'
}

/**
 * The not-found handler: a known path with another method is a 405 whose
 * `Allow` lists the methods registered for it (read from the routes as they
 * are added, HEAD included where Fastify adds it), anything else a 404.
 * Install it before the routes are registered.
 */
export function notFoundHandler (app: FastifyInstance): (request: FastifyRequest, reply: FastifyReply) => void {
  const methods = new Map<string, string[]>()
  app.addHook('onRoute', (route) => {
    const known = methods.get(route.url) ?? []
    for (const method of [route.method].flat()) if (!known.includes(method)) known.push(method)
    methods.set(route.url, known)
  })
  let served: string | undefined
  const endpoints = (): string => new Intl.ListFormat('en').format([...methods].flatMap(([path, allowed]) => allowed.filter((m) => m !== 'HEAD').map((m) => `${m} ${path}`)))

  return function notFound (request, reply) {
    const path = request.url.split('?', 1)[0]!
    const allowed = methods.get(path)
    if (allowed !== undefined) {
      const allow = allowed.join(', ')
      void reply.code(405).header('allow', allow).send({
        error: 'method_not_allowed',
        error_description: `${path} accepts ${allow}`
      })
      return
    }
    served ??= endpoints()
    // The URL is not echoed: a client may have put a secret in it.
    void reply.code(404).send({
      error: 'not_found',
      error_description: `no such endpoint; this sidecar serves ${served}`
    })
  }
}

/** Maps errors to OAuth-style JSON; 5xx never reveals internals, and is logged with the request id. */
export function errorHandler (logger: { error(obj: object, msg: string): void }) {
  return function onError (err: FastifyError | TokenUnavailableError, request: FastifyRequest, reply: FastifyReply): object {
    void reply.header('cache-control', 'no-store')
    if (err instanceof TokenUnavailableError) {
      void reply.code(503).header('retry-after', String(err.retryAfterSeconds))
      return { error: 'token_unavailable', error_description: err.message }
    }
    const status = err.statusCode ?? 500
    if (status >= 500) {
      logger.error({ err, reqId: request.id }, 'unexpected error while handling a request')
      void reply.code(500)
      return { error: 'internal_error', error_description: 'unexpected error; see the sidecar log' }
    }
    void reply.code(status)
    return { error: ERROR_CODES[status] ?? 'invalid_request', error_description: err.message }
  }
}

/** A request this sidecar cannot act on: 400 with an OAuth-style `invalid_request`. */
export class BadRequestError extends SidecarFailure {
  readonly statusCode = 400

  constructor (message: string) {
    super(message, 'INVALID_REQUEST')
  }
}
