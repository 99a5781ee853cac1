import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from './config/load-config.js'
import { StaticToken } from './engine/static-token.js'
import { TokenManager } from './engine/token-manager.js'
import type { Clock, Timers, TokenSource } from './engine/types.js'
import { buildApp } from './http/app.js'
import { SidecarSecret } from './http/sidecar-secret.js'
import { Auth0Transport } from './upstream/auth0-transport.js'

/** Test seams for the engine; production uses the system clock, timers and Math.random. */
export interface SidecarDeps {
  clock?: Clock
  timers?: Timers
  random?: () => number
}

export interface Sidecar {
  app: FastifyInstance
  source: TokenSource
}

/** Wires config into a token source and the HTTP app; nothing starts or listens yet. */
export function createSidecar (config: Config, logger: Logger, deps: SidecarDeps = {}): Sidecar {
  const engineLog = logger.child({ component: 'token-engine' })
  let source: TokenSource
  if (config.credentials !== undefined) {
    const transport = new Auth0Transport({
      tokenUrl: config.tokenUrl,
      clientId: config.credentials.clientId,
      clientSecret: config.credentials.clientSecret,
      audience: config.audience,
      timeoutMs: config.timeoutMs
    })
    source = new TokenManager({
      transport,
      logger: engineLog,
      refreshBufferMs: config.refreshBufferMs,
      describe: {
        domain: config.domain,
        audience: config.audience,
        client_id: config.credentials.clientId,
        token_url: config.tokenUrl.href
      },
      ...deps
    })
    if (config.staticTokenIgnored) {
      logger.warn({ event: 'static_token_ignored' }, 'TOOLBRIDGE_JWT_TOKEN is ignored: client credentials are set, so the sidecar runs in auto-refresh mode; remove the static token')
    }
  } else {
    source = new StaticToken({ token: config.staticToken!, logger: engineLog, warnBeforeMs: config.refreshBufferMs, ...deps })
  }

  const app = buildApp({
    source,
    secret: new SidecarSecret(config.sidecarSecret),
    audience: config.audience,
    logger,
    ...(deps.clock === undefined ? {} : { clock: deps.clock })
  })
  return { app, source }
}
