import type { FastifyInstance } from 'fastify'
import type { SidecarMetrics } from '../../metrics/metrics.js'

/** GET /metrics: Prometheus text format; public like /healthz, never a token or secret. */
export async function metricsRoutes (app: FastifyInstance, opts: { metrics: SidecarMetrics }): Promise<void> {
  const { registry } = opts.metrics
  app.get('/metrics', async (_request, reply) => {
    void reply.type(registry.contentType).header('cache-control', 'no-store')
    return registry.metrics()
  })
}
