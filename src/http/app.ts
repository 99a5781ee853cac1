import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyRequest, type FastifyServerFactory } from 'fastify'
import type { Logger } from 'pino'
import type { TokenPool } from '../engine/token-pool.js'
import { type Clock } from '../engine/types.js'
import { clientErrorHandler, noteResponse } from './client-error.js'
import { ConnectionGuard } from './connection-guard.js'
import { errorHandler, notFoundHandler } from './errors.js'
import { healthRoutes } from './routes/health.js'
import { TokenAnswers, tokenRoutes } from './routes/token.js'
import type { SidecarSecret } from './sidecar-secret.js'
import type { SidecarMetrics } from '../metrics/metrics.js'
import { metricsRoutes } from './routes/metrics.js'
import { systemClock } from '../engine/clock.js'
import { DEFAULTS } from '../config/defaults.js'

/** Bounds on what one client can hold; documented in the README under "Server limits". */
export interface ServerLimits {
  /** Until the request headers are in. */
  headersTimeoutMs: number
  /** Until the whole request is in. */
  requestTimeoutMs: number
  /** How often Node checks the two above: a slow client is closed within their value plus this. */
  connectionsCheckingIntervalMs: number
  /** Longer than common client keep-alive expiries, so a client never reuses a socket we just closed. */
  keepAliveTimeoutMs: number
  /** The keep-alive of a connection that has not presented the sidecar secret. */
  unauthenticatedIdleMs: number
  /** Past it, the idlest unauthenticated connection is closed to admit a new one. */
  maxConnections: number
  bodyLimitBytes: number
}

export const SERVER_LIMITS: Readonly<ServerLimits> = Object.freeze({
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 10_000,
  connectionsCheckingIntervalMs: 1_000,
  keepAliveTimeoutMs: 65_000,
  unauthenticatedIdleMs: 5_000,
  maxConnections: DEFAULTS.maxConnections,
  bodyLimitBytes: 4096
})

export interface AppOptions {
  /** One token source per configured audience; the first serves a plain GET /token. */
  tokens: TokenPool
  secret: SidecarSecret
  logger: Logger
  metrics?: SidecarMetrics
  clock?: Clock
  /** TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS; the same as `limits.maxConnections`. */
  maxConnections?: number
  /** Overrides of SERVER_LIMITS (tests use short ones). */
  limits?: Partial<ServerLimits>
}

/** Access logs show the path, and a query string only with its values redacted: a client may put a secret there. */
function requestWithoutQueryValues (request: FastifyRequest): object {
  const [path, query] = request.url.split('?', 2) as [string, string | undefined]
  const url = query === undefined ? path : `${path}?${[...new URLSearchParams(query).keys()].map((key) => `${encodeURIComponent(key)}=[redacted]`).join('&')}`
  return { method: request.method, url, host: request.host, remoteAddress: request.ip, remotePort: request.socket.remotePort }
}

/** "Server listening at …", as Fastify logs it when it has a logger. */
function listeningAt ({ address, family, port }: AddressInfo): string {
  return `Server listening at http://${family === 'IPv6' ? `[${address}]` : address}:${port}`
}

/** Builds the sidecar's HTTP app without listening; closing it closes the token sources. */
export function buildApp (opts: AppOptions): FastifyInstance {
  const { logger } = opts
  const limits: ServerLimits = { ...SERVER_LIMITS, ...(opts.maxConnections === undefined ? {} : { maxConnections: opts.maxConnections }), ...opts.limits }
  // The MCP server polls on every request: access logs only when debugging. Without
  // them Fastify gets no logger at all, so it creates no per-request child logger and
  // adds no response listeners; the few request-scoped lines use `logger` and carry reqId.
  const accessLogs = logger.isLevelEnabled('debug')
  const connections = new ConnectionGuard(limits)
  const answers = new TokenAnswers({
    tokens: opts.tokens,
    secret: opts.secret,
    clock: opts.clock ?? systemClock,
    onAccepted: connections.authenticated.bind(connections),
    ...(opts.metrics === undefined ? {} : { metrics: opts.metrics })
  })
  const httpOptions = { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: limits.connectionsCheckingIntervalMs }
  /**
   * A Node HTTP server set up as Fastify sets up its own. Each request is noted
   * for the connection guard and the client-error handler, then offered to GET
   * /token's early answer unless access logs are on (every request then goes
   * through Fastify, so that each is logged).
   */
  const serverFactory: FastifyServerFactory = (handler) => {
    const server = createServer(httpOptions, accessLogs
      ? (req, res) => {
          noteResponse(req, res)
          connections.request(req, res)
          handler(req, res)
        }
      : (req, res) => {
          noteResponse(req, res)
          connections.request(req, res)
          if (!answers.early(req, res)) handler(req, res)
        })
    server.keepAliveTimeout = limits.keepAliveTimeoutMs
    server.requestTimeout = limits.requestTimeoutMs
    connections.watchConnections(server)
    return server
  }
  const app = Fastify({
    ...(accessLogs ? { loggerInstance: logger.child({}, { serializers: { req: requestWithoutQueryValues } }) as FastifyBaseLogger } : {}),
    // Answer every request that arrives while closing; connections close after their response.
    return503OnClosing: false,
    bodyLimit: limits.bodyLimitBytes,
    clientErrorHandler: clientErrorHandler(logger),
    serverFactory
  })
  if (!accessLogs) {
    app.addHook('onListen', function (done) {
      // Always a host and port (TOOLBRIDGE_SIDECAR_HOST is an IP address), never a Unix socket path.
      for (const address of this.addresses() as AddressInfo[]) logger.info(listeningAt(address))
      done()
    })
  }

  app.setErrorHandler(errorHandler(logger))
  app.setNotFoundHandler(notFoundHandler(app))
  app.register(tokenRoutes, { answers, logger })
  app.register(healthRoutes, { tokens: opts.tokens })
  if (opts.metrics !== undefined) app.register(metricsRoutes, { metrics: opts.metrics })
  // Before the server waits for in-flight requests: a request waiting on a hanging
  // token fetch is answered 503 at once instead of holding shutdown up.
  // Node closes idle keep-alive sockets once, when closing starts; a socket whose
  // request was answered after that would hold the process until its keep-alive
  // timeout, so idle ones are reaped until the server is closed.
  let reaper: NodeJS.Timeout | undefined
  app.addHook('preClose', (done) => {
    answers.close()
    opts.tokens.stop()
    reaper = setInterval(() => app.server.closeIdleConnections(), 50).unref()
    done()
  })
  app.addHook('onClose', async () => {
    clearInterval(reaper)
    connections.close()
    await opts.tokens.close()
  })
  return app
}
