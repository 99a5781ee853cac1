import { createServer, type ServerOptions } from 'node:http'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyServerFactory } from 'fastify'
import type { Logger } from 'pino'
import type { TokenPool } from '../engine/token-pool.js'
import { systemClock, type Clock } from '../engine/types.js'
import { clientErrorHandler } from './client-error.js'
import { errorHandler, notFound } from './errors.js'
import { FastTokenPath } from './fast-token.js'
import { TokenBody } from './token-body.js'
import { healthRoutes } from './routes/health.js'
import { tokenRoutes } from './routes/token.js'
import type { SidecarSecret } from './sidecar-secret.js'
import type { SidecarMetrics } from '../metrics/metrics.js'
import { metricsRoutes } from './routes/metrics.js'

export interface AppOptions {
  /** One token source per configured audience; the first serves a plain GET /token. */
  tokens: TokenPool
  secret: SidecarSecret
  logger: Logger
  metrics?: SidecarMetrics
  clock?: Clock
  /** New connections past this many are refused; established ones keep working. */
  maxConnections?: number
}

/** Bounds on what one client can hold; documented in the README under "Server limits". */
export const SERVER_LIMITS = Object.freeze({
  /** Until the request headers are in. */
  headersTimeoutMs: 10_000,
  /** Until the whole request is in. */
  requestTimeoutMs: 10_000,
  /** How often Node checks the two above: a slow client is closed within their value plus this. */
  connectionsCheckingIntervalMs: 1_000,
  /** Longer than common client keep-alive expiries, so a client never reuses a socket we just closed. */
  keepAliveTimeoutMs: 65_000,
  maxConnections: 1024,
  bodyLimitBytes: 4096
})

const HTTP_OPTIONS: ServerOptions = {
  headersTimeout: SERVER_LIMITS.headersTimeoutMs,
  connectionsCheckingInterval: SERVER_LIMITS.connectionsCheckingIntervalMs
}

/** Builds the sidecar's HTTP app without listening; closing it closes the token sources. */
export function buildApp (opts: AppOptions): FastifyInstance {
  const accessLogs = opts.logger.isLevelEnabled('debug')
  const clock = opts.clock ?? systemClock
  // With access logs on, every request goes through Fastify so that each is logged.
  const fast = accessLogs
    ? undefined
    : new FastTokenPath({ source: opts.tokens.default, secret: opts.secret, body: new TokenBody(clock), ...(opts.metrics === undefined ? {} : { metrics: opts.metrics }) })
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    // The MCP server polls on every request: access logs only when debugging.
    logController: new LogController({ disableRequestLogging: !accessLogs }),
    // A pino child per request costs a fifth of GET /token's throughput; without
    // access logs, the few request-scoped lines carry reqId themselves.
    ...(accessLogs ? {} : { childLoggerFactory: (logger: FastifyBaseLogger) => logger }),
    // Answer every request that arrives while closing; connections close after their response.
    return503OnClosing: false,
    keepAliveTimeout: SERVER_LIMITS.keepAliveTimeoutMs,
    requestTimeout: SERVER_LIMITS.requestTimeoutMs,
    http: HTTP_OPTIONS,
    bodyLimit: SERVER_LIMITS.bodyLimitBytes,
    clientErrorHandler,
    ...(fast === undefined ? {} : { serverFactory: withFastPath(fast) })
  })
  app.server.maxConnections = opts.maxConnections ?? SERVER_LIMITS.maxConnections

  app.setErrorHandler(errorHandler)
  app.setNotFoundHandler(notFound)
  app.register(tokenRoutes, {
    tokens: opts.tokens,
    secret: opts.secret,
    clock,
    ...(opts.metrics === undefined ? {} : { metrics: opts.metrics })
  })
  app.register(healthRoutes, { tokens: opts.tokens })
  if (opts.metrics !== undefined) app.register(metricsRoutes, { metrics: opts.metrics })
  // Before the server waits for in-flight requests: a request waiting on a hanging
  // token fetch is answered 503 at once instead of holding shutdown up.
  // Node closes idle keep-alive sockets once, when closing starts; a socket whose
  // request was answered after that would hold the process until its keep-alive
  // timeout, so idle ones are reaped until the server is closed.
  let reaper: NodeJS.Timeout | undefined
  app.addHook('preClose', (done) => {
    fast?.close()
    opts.tokens.stop()
    reaper = setInterval(() => app.server.closeIdleConnections(), 50).unref()
    done()
  })
  app.addHook('onClose', async () => {
    clearInterval(reaper)
    await opts.tokens.close()
  })
  return app
}

/** A Node HTTP server that offers each request to the fast path first, set up as Fastify sets up its own. */
function withFastPath (fast: FastTokenPath): FastifyServerFactory {
  return (handler) => {
    const server = createServer(HTTP_OPTIONS, (req, res) => {
      if (!fast.handle(req, res)) handler(req, res)
    })
    server.keepAliveTimeout = SERVER_LIMITS.keepAliveTimeoutMs
    server.requestTimeout = SERVER_LIMITS.requestTimeoutMs
    return server
  }
}
