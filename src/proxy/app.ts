import { createHash } from 'node:crypto'
import type { IncomingHttpHeaders } from 'node:http'
import { Readable } from 'node:stream'
import replyFrom from '@fastify/reply-from'
import Fastify, { LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { Pool } from 'undici'
import type { TokenSource } from '../engine/types.js'
import { SERVER_LIMITS } from '../http/app.js'
import { clientErrorHandler, noteResponse } from '../http/client-error.js'
import { ConnectionGuard } from '../http/connection-guard.js'
import { errorHandler } from '../http/errors.js'
import { bearerCredentials, type SidecarSecret } from '../http/sidecar-secret.js'
import type { ProxyMetrics } from '../metrics/metrics.js'
import { BodyTooLargeError, bodyBytes, exceededCap, readBody, type ProxyBody } from './body.js'
import { downstreamHeaders, upstreamHeaders } from './headers.js'
import { PROXY_LIMITS } from './limits.js'
import { unsafeTarget } from './target.js'

export interface ProxyAppOptions {
  /** The API's origin: the only place requests go. */
  target: URL
  /** The audience's token source the proxy injects tokens from. */
  source: TokenSource
  secret: SidecarSecret
  logger: Logger
  metrics: ProxyMetrics
  /** New connections past this many are refused; established ones keep working. */
  maxConnections?: number
  maxBodyBytes: number
  connectTimeoutMs: number
  /** Until the API's response headers arrive. */
  headersTimeoutMs: number
  /** Longest silence on a response body, and on a caller's connection. */
  idleTimeoutMs: number
  /** Test seam: shorter bounds than PROXY_LIMITS. */
  limits?: Partial<Record<keyof typeof PROXY_LIMITS, number>>
}

/** One proxied request's progress. */
interface Forwarding {
  token: string
  /** The whole body is in memory (or there is none): it can be sent again. */
  replayable: boolean
  /** That body, when there is one. */
  held: Buffer | undefined
  retried: boolean
  sentAt: number
  upstreamMs: number | undefined
}

declare module 'fastify' {
  interface FastifyRequest {
    forwarding: Forwarding | null
  }
}

/** One warning a minute about callers without the right secret is enough to notice them. */
const REJECTION_LOG_INTERVAL_MS = 60_000

/** The OAuth-style answer of the proxy's own failures. */
function failure (reply: FastifyReply, status: number, error: string, description: string): void {
  void reply.code(status).header('cache-control', 'no-store').send({ error, error_description: description })
}

/** Undici's timeout codes, and @fastify/reply-from's own timeout errors (status 504). */
const TIMEOUT_CODES: ReadonlySet<string> = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT'])

/** What went wrong upstream: undici's code, which @fastify/reply-from wraps as the cause. */
function upstreamCode (error: Error & { code?: string }): string {
  /* c8 ignore next -- only an API status code Fastify cannot send gives an error without a cause */
  const failed = (error.cause ?? error) as { code?: string }
  return String(failed.code)
}

/**
 * The credential-injecting proxy: a Fastify app of its own, not listening,
 * that forwards every request to one origin with the sidecar secret swapped
 * for an access token. Closing it closes its upstream connections, never the
 * token source (the sidecar's app owns that).
 */
export function buildProxyApp (opts: ProxyAppOptions): FastifyInstance {
  const limits = { ...PROXY_LIMITS, ...opts.limits }
  const { source, secret, target, metrics } = opts
  const log = opts.logger.child({ component: 'proxy' })
  const debug = log.isLevelEnabled('debug')
  // Request-scoped lines from Fastify and @fastify/reply-from (one per failure, with
  // error objects) stay quiet; the proxy writes its own, once per request.
  const quiet = log.child({}, { level: 'error' })
  const origin = target.origin
  const pool = new Pool(origin, {
    connectTimeout: opts.connectTimeoutMs,
    headersTimeout: opts.headersTimeoutMs,
    bodyTimeout: opts.idleTimeoutMs
  })

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: () => quiet as FastifyBaseLogger,
    return503OnClosing: false,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    requestTimeout: limits.requestTimeoutMs,
    // A caller's connection may sit silent while the API thinks (headers timeout) or streams slowly (idle timeout).
    connectionTimeout: Math.max(opts.headersTimeoutMs, opts.idleTimeoutMs),
    http: { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: 1_000 },
    bodyLimit: opts.maxBodyBytes,
    clientErrorHandler: clientErrorHandler(log)
  })
  // The same accounting as the token listener: a peer without the secret cannot hold every slot.
  const connections = new ConnectionGuard({ maxConnections: opts.maxConnections ?? SERVER_LIMITS.maxConnections, unauthenticatedIdleMs: SERVER_LIMITS.unauthenticatedIdleMs })
  connections.attach(app.server)
  app.server.on('request', noteResponse)
  app.decorateRequest('forwarding', null)
  app.register(replyFrom, {
    base: origin,
    undici: pool,
    disableRequestLogging: true
  })

  const onError = errorHandler(log)
  app.setErrorHandler((err, request, reply) => {
    if (err instanceof BodyTooLargeError) void reply.header('connection', 'close')
    return onError(err as Parameters<typeof onError>[0], request, reply)
  })

  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', (_request, payload, done) => readBody({ maxBodyBytes: opts.maxBodyBytes, retryBufferBytes: limits.retryBufferBytes }, payload, done))

  let lastRejectionLog = -Infinity
  let suppressed = 0
  function unauthorized (request: FastifyRequest, reply: FastifyReply, presented: string | undefined): void {
    const now = performance.now()
    if (now - lastRejectionLog >= REJECTION_LOG_INTERVAL_MS) {
      log.warn({ event: 'auth_rejected', reason: presented === undefined ? 'missing_credentials' : 'wrong_secret', remote_address: request.ip, suppressed }, 'rejected a proxy request without the right sidecar secret; nothing was forwarded')
      lastRejectionLog = now
      suppressed = 0
    } else {
      suppressed++
    }
    void reply.header('www-authenticate', 'Bearer')
    failure(reply, 401, 'unauthorized', presented === undefined
      ? 'send the sidecar secret as Authorization: Bearer <secret>'
      : 'the sidecar secret does not match')
  }

  // Before the body is read: a caller without the secret gets nothing forwarded and costs no upload.
  app.addHook('onRequest', (request, reply, done) => {
    const presented = bearerCredentials(request.headers.authorization)
    if (presented === undefined || !secret.matches(presented)) {
      unauthorized(request, reply, presented)
      return
    }
    connections.authenticated(request.raw.socket)
    const unsafe = unsafeTarget(request.raw.url!)
    if (unsafe !== undefined) {
      failure(reply, 400, 'invalid_request', unsafe)
      return
    }
    done()
  })

  app.addHook('onResponse', (request, reply, done) => {
    metrics.answered(request.method, reply.statusCode)
    const forwarding = request.forwarding
    if (forwarding !== null) metrics.bytes('request', forwarding.held?.length ?? bodyBytes(request.body as ProxyBody | undefined, request.headers['content-length']))
    if (debug) {
      const url = request.raw.url!
      const query = url.indexOf('?')
      log.debug({
        event: 'proxy_request',
        method: request.method,
        // The query string may carry anything; it is not logged.
        path: query === -1 ? url : url.slice(0, query),
        status: reply.statusCode,
        upstream_ms: forwarding?.upstreamMs ?? null,
        retried: forwarding?.retried ?? false,
        duration_ms: Math.round(reply.elapsedTime * 100) / 100
      }, 'proxied a request')
    }
    done()
  })

  function forward (request: FastifyRequest, reply: FastifyReply, forwarding: Forwarding): void {
    const { held } = forwarding
    const contentType = request.headers['content-type']
    // A held body is passed as is: @fastify/reply-from would re-encode a JSON one,
    // and label one without a type; as a stream it goes with the caller's headers.
    if (held !== undefined && contentType === undefined) request.body = Readable.from([held])
    forwarding.sentAt = performance.now()
    void reply.from(undefined, {
      ...(held !== undefined && contentType !== undefined ? { body: held, contentType } : {}),
      retryDelay: noRetry,
      rewriteRequestHeaders: (_request, headers) => upstreamHeaders(headers as IncomingHttpHeaders, forwarding.token),
      rewriteHeaders: downstreamHeaders,
      onResponse: (_request, _reply, raw) => {
        const res = raw as unknown as Upstream
        forwarding.upstreamMs = Math.round((performance.now() - forwarding.sentAt) * 100) / 100
        metrics.upstream(forwarding.upstreamMs / 1000)
        if (res.statusCode === 401 && !forwarding.retried) {
          void rejected(request, reply, res, forwarding)
          return
        }
        relay(reply, res)
      },
      onError: (_reply, { error }) => upstreamFailed(request, reply, error)
    })
  }

  function relay (reply: FastifyReply, res: Upstream): void {
    const length = res.headers['content-length']
    if (length !== undefined) metrics.bytes('response', Number(length))
    else res.stream.on('data', (chunk: Buffer) => metrics.bytes('response', chunk.length))
    void reply.send(res.stream)
  }

  /** The API rejected the token: ask for a newer one, and send a held request again with it. */
  async function rejected (request: FastifyRequest, reply: FastifyReply, res: Upstream, forwarding: Forwarding): Promise<void> {
    const sha256 = createHash('sha256').update(forwarding.token).digest('hex')
    const refreshed = source.forceRefresh(sha256)
    if (!forwarding.replayable) {
      // Its body is gone: the caller sees the 401 and decides; the next request gets the new token.
      refreshed.catch(() => {})
      relay(reply, res)
      return
    }
    const fresh = await refreshed.catch(() => undefined)
    if (fresh === undefined || fresh.accessToken === forwarding.token) {
      relay(reply, res)
      return
    }
    res.stream.resume()
    for (const name of Object.keys(reply.getHeaders())) reply.removeHeader(name)
    forwarding.retried = true
    forwarding.token = fresh.accessToken
    metrics.retried()
    log.info({ event: 'proxy_retry', method: request.method }, 'the API rejected the token; sending the request again with a new one')
    forward(request, reply, forwarding)
  }

  function upstreamFailed (request: FastifyRequest, reply: FastifyReply, error: Error & { code?: string, statusCode?: number }): void {
    const body = request.body as ProxyBody | undefined
    if (exceededCap(body)) {
      void reply.header('connection', 'close')
      failure(reply, 413, 'payload_too_large', new BodyTooLargeError(opts.maxBodyBytes).message)
      return
    }
    const code = upstreamCode(error)
    const timedOut = TIMEOUT_CODES.has(code) || error.statusCode === 504
    log.warn({ event: 'proxy_upstream_failed', method: request.method, target: origin, code }, timedOut
      ? `the API at ${origin} did not answer in time (${code})`
      : `the API at ${origin} could not be reached (${code})`)
    if (timedOut) failure(reply, 504, 'gateway_timeout', `the API did not answer in time (${code})`)
    else failure(reply, 502, 'bad_gateway', `the API could not be reached (${code})`)
  }

  function handler (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> | undefined {
    const body = request.body as ProxyBody | undefined
    if (body === undefined && hasBody(request.headers)) {
      // Fastify does not read a GET or HEAD body; forwarding its length without it would stall the API.
      failure(reply, 400, 'invalid_request', `a ${request.method} request must not have a body`)
      return undefined
    }
    const held = body instanceof Buffer ? body : undefined
    const forwarding: Forwarding = { token: '', replayable: body === undefined || held !== undefined, held, retried: false, sentAt: 0, upstreamMs: undefined }
    request.forwarding = forwarding
    const serving = source.serving()
    if (serving !== undefined) {
      forwarding.token = serving.token.accessToken
      forward(request, reply, forwarding)
      return undefined
    }
    return source.token().then((token) => {
      forwarding.token = token.accessToken
      forward(request, reply, forwarding)
      return reply
    })
  }

  app.all('*', handler)

  let reaper: NodeJS.Timeout | undefined
  let drain: NodeJS.Timeout | undefined
  app.addHook('preClose', (done) => {
    reaper = setInterval(() => app.server.closeIdleConnections(), 50).unref()
    drain = setTimeout(() => app.server.closeAllConnections(), limits.drainMs).unref()
    done()
  })
  app.addHook('onClose', async () => {
    clearInterval(reaper)
    clearTimeout(drain)
    connections.close()
    await pool.close()
  })
  return app
}

/** What @fastify/reply-from hands over of the API's answer (undici's, typed loosely there). */
interface Upstream {
  statusCode: number
  headers: Record<string, string | string[] | undefined>
  stream: NodeJS.ReadableStream
}

function noRetry (): null {
  return null
}

function hasBody (headers: IncomingHttpHeaders): boolean {
  const length = headers['content-length']
  return headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')
}
