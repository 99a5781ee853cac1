import type { FastifyInstance } from 'fastify'
import type { TokenPool } from '../../engine/token-pool.js'

/**
 * GET /healthz: public, never carries a token or secret. 503 when any
 * configured audience has no unexpired token, so a deploy with one broken
 * grant fails its check; `unavailable_audiences` names them. The top-level
 * `status` agrees with the HTTP status: `unavailable` with a 503 even when the
 * default audience itself is fine (its own status stays under `audiences`).
 */
export async function healthRoutes (app: FastifyInstance, opts: { tokens: TokenPool }): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    const health = opts.tokens.health()
    if (health.unavailable_audiences.length > 0) health.status = 'unavailable'
    void reply.code(health.status === 'unavailable' ? 503 : 200).header('cache-control', 'no-store')
    return health
  })
}
