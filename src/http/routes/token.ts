import type { IncomingMessage, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { TokenPool } from '../../engine/token-pool.js'
import type { Clock, ServedToken, TokenSource } from '../../engine/types.js'
import { secretGuard } from '../require-secret.js'
import { bearerCredentials, type SidecarSecret } from '../sidecar-secret.js'
import { TOKEN_HEADERS, TokenBody } from '../token-body.js'
import type { SidecarMetrics } from '../../metrics/metrics.js'
import { BadRequestError } from '../errors.js'

export interface TokenAnswersOptions {
  tokens: TokenPool
  secret: SidecarSecret
  clock: Clock
  metrics?: SidecarMetrics
  /** Told of each connection whose request presented the right secret (ConnectionGuard.authenticated). */
  onAccepted: (socket: Socket) => void
}

export interface TokenRoutesOptions {
  answers: TokenAnswers
  /** Logs rejected requests (with their request id): Fastify's own logger is off unless access logs are on. */
  logger: { warn(obj: object, msg: string): void }
}

// For apps built without metrics (tests). The bundled CLI always has metrics, so these two never run
// there, and coverage of a spawned CLI counts the bundle's copy of them apart from the source's.
/* c8 ignore next */
const noMetrics = { tokenServed () {}, response () {} }

/**
 * GET /token's answers, for both of its paths: one cached body (and header
 * set) per audience, the counters, and the early answer.
 *
 * The early answer takes GET /token's common case (exactly `GET /token`, the
 * right secret, a token held) before Fastify routes the request: the MCP
 * server asks on every call, and skipping Fastify's routing and reply
 * machinery is what keeps the sidecar within reach of a bare Fastify route
 * (docs/benchmarks.md). It writes what the route writes, from the same cache,
 * byte for byte. Everything else goes to the route below. App hooks do not
 * see early answers; the app turns the early answer off when access logs are
 * on (every request is then logged) and once shutdown begins (Fastify then
 * closes each connection after its answer).
 */
export class TokenAnswers {
  readonly tokens: TokenPool
  readonly secret: SidecarSecret
  readonly metrics: Pick<SidecarMetrics, 'tokenServed' | 'response'>
  readonly onAccepted: (socket: Socket) => void
  readonly #bodies: ReadonlyMap<TokenSource, TokenBody>
  readonly #default: TokenBody
  #open = true

  constructor (opts: TokenAnswersOptions) {
    this.tokens = opts.tokens
    this.secret = opts.secret
    this.metrics = opts.metrics ?? noMetrics
    this.onAccepted = opts.onAccepted
    // One cached body per audience: each changes with its own token.
    this.#bodies = new Map(opts.tokens.audiences.map((audience) => [opts.tokens.get(audience)!, new TokenBody(opts.clock)]))
    this.#default = this.body(opts.tokens.default)
  }

  body (source: TokenSource): TokenBody {
    return this.#bodies.get(source)!
  }

  /** From now on the route answers everything. */
  close (): void {
    this.#open = false
  }

  /** Answers GET /token's common case before routing; false leaves the request to Fastify. */
  early (req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.#open || req.url !== '/token' || req.method !== 'GET') return false
    const presented = bearerCredentials(req.headers.authorization)
    if (presented === undefined || !this.secret.matches(presented)) return false
    const serving = this.tokens.default.serving()
    if (serving === undefined) return false
    this.onAccepted(req.socket)
    const json = this.#default.cached(serving)
    this.metrics.tokenServed()
    res.writeHead(200, this.#default.cachedHead)
    res.end(json)
    return true
  }
}

/**
 * GET /token and POST /token/refresh, both behind the sidecar secret, as
 * Fastify routes; GET /token's common case usually never gets here (see
 * TokenAnswers.early), and everything else does: a query, a wrong or missing
 * secret, no token yet (the handler then waits for the fetch), HEAD, every
 * request once shutdown begins or while access logs are on.
 */
export async function tokenRoutes (app: FastifyInstance, opts: TokenRoutesOptions): Promise<void> {
  const { answers } = opts
  const { tokens, metrics } = answers
  const body = (source: TokenSource): TokenBody => answers.body(source)
  const served = tokens.audiences.length === 1
    ? `this sidecar only serves tokens for audience ${tokens.defaultAudience}`
    : `this sidecar serves tokens for these audiences only: ${tokens.audiences.join(', ')}`
  // One guard for both routes, so rejections share one log-line budget; the refresh route counts its own answers.
  const allowed = secretGuard(answers.secret, (request) => {
    if (request.method !== 'POST') metrics.response('/token', 401)
  }, { logger: opts.logger, onAccepted: answers.onAccepted })

  function send (reply: FastifyReply, json: string): FastifyReply {
    return reply.headers(TOKEN_HEADERS).send(json)
  }

  /** The source `?audience=` names (the default without one), or undefined after answering 400. */
  function audienceSource (request: FastifyRequest, reply: FastifyReply): TokenSource | undefined {
    const asked = (request.query as { audience?: unknown }).audience
    if (asked === undefined) return tokens.default
    const source = typeof asked === 'string' ? tokens.get(asked) : undefined
    if (source === undefined) {
      void reply.code(400).header('cache-control', 'no-store').send({ error: 'invalid_request', error_description: served })
    }
    return source
  }

  async function waitForToken (source: TokenSource, reply: FastifyReply): Promise<FastifyReply> {
    let token: ServedToken
    try {
      token = await source.token()
    } catch (err) {
      metrics.response('/token', (err as { statusCode?: number }).statusCode ?? 500)
      throw err
    }
    metrics.tokenServed()
    return send(reply, body(source).fresh(token))
  }

  // POST /token/refresh may say which token the API rejected, as JSON or a form; any other body is dropped.
  app.removeAllContentTypeParsers()
  // Bodies are capped by the app's bodyLimit (SERVER_LIMITS.bodyLimitBytes).
  app.addContentTypeParser('application/json', { parseAs: 'string' }, parseJson)
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, parseForm)
  app.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => {
    done(null, undefined)
  })

  app.get('/token', (request, reply) => {
    if (!allowed(request, reply)) return
    // Fastify parses a query string only when there is one.
    const source = request.url.length === 6 ? tokens.default : audienceSource(request, reply)
    if (source === undefined) {
      metrics.response('/token', 400)
      return
    }
    const serving = source.serving()
    if (serving === undefined) return waitForToken(source, reply)
    metrics.tokenServed()
    send(reply, body(source).cached(serving))
  })

  // Rare (after an API 401): the plain async path, counted by a hook on this route only.
  app.post('/token/refresh', {
    onResponse (_request, reply, done) {
      metrics.response('/token/refresh', reply.statusCode)
      done()
    }
  }, async (request, reply) => {
    if (!allowed(request, reply)) return reply
    const source = audienceSource(request, reply)
    if (source === undefined) return reply
    return send(reply, body(source).fresh(await source.forceRefresh(rejectedToken(request.body as RefreshBody | undefined))))
  })
}

interface RefreshBody { rejected_token_sha256?: unknown }

const SHA256_HEX = /^[0-9a-f]{64}$/i


function parseJson (_request: FastifyRequest, text: string | Buffer, done: (err: Error | null, body?: unknown) => void): void {
  if (String(text).trim() === '') {
    done(null, undefined)
    return
  }
  let body: unknown
  try {
    body = JSON.parse(String(text))
  } catch {
    done(new BadRequestError('the body is not valid JSON'))
    return
  }
  if (body === null || typeof body !== 'object' || Array.isArray(body)) done(new BadRequestError('the body must be a JSON object'))
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
    throw new BadRequestError('rejected_token_sha256 must be the hex SHA-256 (64 characters) of the access token the API rejected')
  }
  return value.toLowerCase()
}
