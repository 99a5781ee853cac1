import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Clock, ServedToken, TokenSource } from '../../engine/types.js'
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
    return {
      access_token: token.accessToken,
      token_type: 'Bearer',
      expires_in: token.expiresAt === null ? null : Math.floor((token.expiresAt - clock.now()) / 1000),
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

  // The refresh call carries no body we need; accept and drop whatever a client library sends.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: 4096 }, (_request, _body, done) => {
    done(null, undefined)
  })

  app.get('/token', { schema: { response: tokenAnswer } }, async (request, reply) => {
    if (wrongAudience(request, reply)) return reply
    return answer(reply, source.current() ?? await source.token())
  })

  app.post('/token/refresh', { schema: { response: tokenAnswer } }, async (request, reply) => {
    if (wrongAudience(request, reply)) return reply
    return answer(reply, await source.forceRefresh())
  })
}
