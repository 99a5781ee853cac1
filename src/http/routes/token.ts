import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { remainingMs, type Clock, type ServedToken, type TokenSource } from '../../engine/types.js'
import { requireSecret } from '../require-secret.js'
import type { SidecarSecret } from '../sidecar-secret.js'
import type { SidecarMetrics } from '../../metrics/metrics.js'

export interface TokenRoutesOptions {
  source: TokenSource
  secret: SidecarSecret
  audience: string
  clock: Clock
  metrics?: SidecarMetrics
}

const tokenAnswer = {
  200: {
    type: 'object',
    properties: {
      access_token: { type: 'string' },
      token_type: { type: 'string' },
      expires_in: { type: ['integer', 'null'] },
      expires_at: { type: ['string', 'null'] }
    },
    required: ['access_token', 'token_type', 'expires_in', 'expires_at']
  }
}

/** GET /token and POST /token/refresh, both behind the sidecar secret. */
export async function tokenRoutes (app: FastifyInstance, opts: TokenRoutesOptions): Promise<void> {
  const { source, audience, clock } = opts

  function answer (reply: FastifyReply, token: ServedToken) {
    void reply.header('cache-control', 'no-store')
    const left = remainingMs(token, clock)
    return {
      access_token: token.accessToken,
      token_type: 'Bearer',
      expires_in: left === null ? null : Math.floor(left / 1000),
      expires_at: token.expiresAtIso
    }
  }

  function wrongAudience (request: FastifyRequest, reply: FastifyReply): boolean {
    const asked = (request.query as { audience?: unknown }).audience
    if (asked === undefined || asked === audience) return false
    void reply.code(400).header('cache-control', 'no-store').send({
      error: 'invalid_request',
      error_description: `this sidecar only serves tokens for audience ${audience}`
    })
    return true
  }

  app.addHook('onRequest', requireSecret(opts.secret))
  const { metrics } = opts
  if (metrics !== undefined) {
    app.addHook('onResponse', (request, reply, done) => {
      metrics.response(request.routeOptions.url as string, reply.statusCode)
      done()
    })
  }

  // POST /token/refresh may say which token the API rejected, as JSON or a form; any other body is dropped.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('application/json', { parseAs: 'string', bodyLimit: 4096 }, parseJson)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, parseForm)
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 4096 }, (_request, _body, done) => {
    done(null, undefined)
  })

  app.get('/token', { schema: { response: tokenAnswer } }, async (request, reply) => {
    if (wrongAudience(request, reply)) return reply
    return answer(reply, source.current() ?? await source.token())
  })

  app.post('/token/refresh', { schema: { response: tokenAnswer } }, async (request, reply) => {
    if (wrongAudience(request, reply)) return reply
    return answer(reply, await source.forceRefresh(rejectedToken(request.body as RefreshBody | undefined)))
  })
}

interface RefreshBody { rejected_token_sha256?: unknown }

const SHA256_HEX = /^[0-9a-f]{64}$/i

function badRequest (message: string): Error {
  return Object.assign(new Error(message), { statusCode: 400 })
}

function parseJson (_request: FastifyRequest, text: string | Buffer, done: (err: Error | null, body?: unknown) => void): void {
  if (String(text).trim() === '') {
    done(null, undefined)
    return
  }
  let body: unknown
  try {
    body = JSON.parse(String(text))
  } catch {
    done(badRequest('the body is not valid JSON'))
    return
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) done(badRequest('the body must be a JSON object'))
  else done(null, body)
}

function parseForm (_request: FastifyRequest, text: string | Buffer, done: (err: Error | null, body?: unknown) => void): void {
  const value = new URLSearchParams(String(text)).get('rejected_token_sha256')
  done(null, value === null ? {} : { rejected_token_sha256: value })
}

/** The hash a client sent of the token the API rejected; other fields are ignored. */
function rejectedToken (body: RefreshBody | undefined): string | undefined {
  const value = body?.rejected_token_sha256
  if (value === undefined) return undefined
  if (typeof value !== 'string' || !SHA256_HEX.test(value)) {
    throw badRequest('rejected_token_sha256 must be the hex SHA-256 (64 characters) of the access token the API rejected')
  }
  return value.toLowerCase()
}
