import type { FastifyInstance } from 'fastify'
import type { TokenSource } from '../../engine/types.js'

/** GET /healthz: public, never carries a token or secret; 503 when no unexpired token is held. */
export async function healthRoutes (app: FastifyInstance, opts: { source: TokenSource }): Promise<void> {
  app.get('/healthz', async (_request, reply) => {
    const health = opts.source.health()
    void reply.code(health.status === 'unavailable' ? 503 : 200).header('cache-control', 'no-store')
    return health
  })
}
