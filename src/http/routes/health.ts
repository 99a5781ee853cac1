import type { FastifyInstance } from 'fastify'
import type { TokenPool } from '../../engine/token-pool.js'

/**
 * GET /healthz: public, never carries a token or secret. 503 when any
 * configured audience has no unexpired token, so a deploy with one broken
 * grant fails its check; `unavailable_audiences` names them.
 */
export async function healthRoutes (app: FastifyInstance, opts: { tokens: TokenPool }): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    const health = opts.tokens.health()
    void reply.code(health.unavailable_audiences.length > 0 ? 503 : 200).header('cache-control', 'no-store')
    return health
  })
}
