import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { systemClock, type Clock, type TokenSource } from '../engine/types.js'
import { errorHandler, notFound } from './errors.js'
import { healthRoutes } from './routes/health.js'
import { tokenRoutes } from './routes/token.js'
import type { SidecarSecret } from './sidecar-secret.js'
import type { SidecarMetrics } from '../metrics/metrics.js'
import { metricsRoutes } from './routes/metrics.js'

export interface AppOptions {
  source: TokenSource
  secret: SidecarSecret
  audience: string
  logger: Logger
  metrics?: SidecarMetrics
  clock?: Clock
}

/** Builds the sidecar's HTTP app without listening; closing it closes the token source. */
export function buildApp (opts: AppOptions): FastifyInstance {
  const accessLogs = opts.logger.isLevelEnabled('debug')
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // The MCP server polls on every request: access logs only when debugging.
    logController: new LogController({ disableRequestLogging: !accessLogs }),
    // A pino child per request costs a fifth of GET /token's throughput; without
    // access logs, the few request-scoped lines carry reqId themselves.
    ...(accessLogs ? {} : { childLoggerFactory: (logger: FastifyBaseLogger) => logger }),
    // Answer every request that arrives while closing; connections close after their response.
    return503OnClosing: false,
    // Longer than common client keep-alive expiries, so a client never reuses a socket we just closed.
    keepAliveTimeout: 65_000,
    requestTimeout: 30_000,
    bodyLimit: 4096
  })

  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFound)
  app.register(tokenRoutes, {
    source: opts.source,
    secret: opts.secret,
    audience: opts.audience,
    clock: opts.clock ?? systemClock,
    ...(opts.metrics === undefined ? {} : { metrics: opts.metrics })
  })
  app.register(healthRoutes, { source: opts.source })
  if (opts.metrics !== undefined) app.register(metricsRoutes, { metrics: opts.metrics })
  app.addHook('onClose', () => opts.source.close())
  return app
}
