import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TokenSource } from '../engine/types.js'
import type { SidecarMetrics } from '../metrics/metrics.js'
import { bearerCredentials, type SidecarSecret } from './sidecar-secret.js'
import { JSON_TYPE, TokenBody } from './token-body.js'

export interface FastTokenOptions {
  source: TokenSource
  secret: SidecarSecret
  body: TokenBody
  metrics?: Pick<SidecarMetrics, 'tokenServed'>
}

/**
 * GET /token's common case, answered before Fastify routes the request: the
 * MCP server asks on every call, and this one answer is most of the
 * sidecar's work. It handles only a plain `GET /token` with the right secret
 * while a token is held, and writes exactly what the Fastify route writes
 * (status, body, content-type, cache-control). Everything else (a wrong or
 * missing secret, a query string, no token yet, any other method or path,
 * and every request once shutdown begins) goes to Fastify as usual.
 */
export class FastTokenPath {
  readonly #source: TokenSource
  readonly #secret: SidecarSecret
  readonly #body: TokenBody
  readonly #metrics: Pick<SidecarMetrics, 'tokenServed'> | undefined
  #open = true

  constructor (opts: FastTokenOptions) {
    this.#source = opts.source
    this.#secret = opts.secret
    this.#body = opts.body
    this.#metrics = opts.metrics
  }

  /** From now on Fastify answers everything (it marks answers during shutdown `Connection: close`). */
  close (): void {
    this.#open = false
  }

  /** True when it answered the request. */
  handle (req: IncomingMessage, res: ServerResponse): boolean {
    if (!this.#open || req.url !== '/token' || req.method !== 'GET') return false
    const presented = bearerCredentials(req.headers.authorization)
    if (presented === undefined || !this.#secret.matches(presented)) return false
    const serving = this.#source.serving()
    if (serving === undefined) return false
    const json = this.#body.cached(serving)
    this.#metrics?.tokenServed()
    res.writeHead(200, {
      'content-type': JSON_TYPE,
      'cache-control': 'no-store',
      'content-length': this.#body.cachedLength
    })
    res.end(json)
    return true
  }
}
