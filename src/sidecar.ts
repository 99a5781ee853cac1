import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config, Env } from './config/load-config.js'
import { reloadSecrets } from './config/reload-secrets.js'
import { StaticToken } from './engine/static-token.js'
import { TokenManager } from './engine/token-manager.js'
import type { Clock, Timers, TokenSource } from './engine/types.js'
import { buildApp } from './http/app.js'
import { SidecarSecret } from './http/sidecar-secret.js'
import { createMetrics } from './metrics/metrics.js'
import { Auth0Transport } from './upstream/auth0-transport.js'
import { lowQuotas } from './upstream/rate-limit.js'
import { SecretScrubber } from './secret-scrubber.js'

/** Test seams for the engine; production uses the system clock, timers and Math.random. */
export interface SidecarDeps {
  clock?: Clock
  timers?: Timers
  random?: () => number
}

export interface Sidecar {
  app: FastifyInstance
  source: TokenSource
  /**
   * SIGHUP: re-reads the `..._FILE` secrets. A changed sidecar secret applies
   * to the next request; a changed client secret to the next token request,
   * and a token is fetched at once to prove it. Bad files are logged and the
   * old values kept. Never throws.
   */
  reload(env: Env): Promise<void>
}

/** Wires config into a token source, metrics and the HTTP app; nothing starts or listens yet. */
export function createSidecar (config: Config, logger: Logger, deps: SidecarDeps = {}): Sidecar {
  const engineLog = logger.child({ component: 'token-engine' })
  const secret = new SidecarSecret(config.sidecarSecret)
  const scrubber = new SecretScrubber()
  scrubber.add(config.sidecarSecret)
  scrubber.add(config.credentials?.clientSecret)
  const current = { TOOLBRIDGE_SIDECAR_SECRET: config.sidecarSecret, TOOLBRIDGE_AUTH0_CLIENT_SECRET: config.credentials?.clientSecret }
  let source: TokenSource | undefined
  const metrics = createMetrics(() => source?.current(), deps.clock)
  const engineDeps = { clock: deps.clock, timers: deps.timers, random: deps.random }

  let transport: Auth0Transport | undefined
  let manager: TokenManager | undefined
  if (config.credentials !== undefined) {
    transport = new Auth0Transport({
      tokenUrl: config.tokenUrl,
      clientId: config.credentials.clientId,
      clientSecret: config.credentials.clientSecret,
      audience: config.audience,
      timeoutMs: config.timeoutMs,
      scrub: (text, maxChars) => scrubber.scrub(text, maxChars),
      onRateLimit (info) {
        metrics.rateLimit(info)
        for (const low of lowQuotas(info)) {
          engineLog.warn({ event: 'auth0_quota_low', ...low }, `Auth0 ${low.scope.replace('_', ' ')} nearly used up: ${low.remaining} of ${low.limit} left`)
        }
      }
    })
    manager = new TokenManager({
      transport,
      logger: engineLog,
      refreshBufferMs: config.refreshBufferMs,
      observer: metrics,
      describe: {
        domain: config.domain,
        audience: config.audience,
        client_id: config.credentials.clientId,
        token_url: config.tokenUrl.href
      },
      ...engineDeps
    })
    source = manager
    if (config.staticTokenIgnored) {
      logger.warn({ event: 'static_token_ignored' }, 'TOOLBRIDGE_JWT_TOKEN is ignored: client credentials are set, so the sidecar runs in auto-refresh mode; remove the static token')
    }
  } else {
    source = new StaticToken({ token: config.staticToken!, logger: engineLog, warnBeforeMs: config.refreshBufferMs, ...engineDeps })
  }

  const app = buildApp({
    source,
    secret,
    audience: config.audience,
    logger,
    metrics,
    maxConnections: config.maxConnections,
    ...(deps.clock === undefined ? {} : { clock: deps.clock })
  })

  async function reload (env: Env): Promise<void> {
    const result = await reloadSecrets(env, current)
    for (const { variable, reason } of result.rejected) {
      logger.error({ event: 'config_reload_failed', variable }, `reload rejected ${variable}, keeping the current value: ${reason}`)
    }
    const { TOOLBRIDGE_SIDECAR_SECRET: sidecarSecret, TOOLBRIDGE_AUTH0_CLIENT_SECRET: clientSecret } = result.changed
    scrubber.add(sidecarSecret)
    scrubber.add(clientSecret)
    if (sidecarSecret !== undefined) {
      secret.set(sidecarSecret)
      current.TOOLBRIDGE_SIDECAR_SECRET = sidecarSecret
    }
    const clientSecretApplies = clientSecret !== undefined && transport !== undefined
    if (clientSecretApplies) {
      transport!.setClientSecret(clientSecret)
      current.TOOLBRIDGE_AUTH0_CLIENT_SECRET = clientSecret
    }
    logger.info({
      event: 'config_reloaded',
      changed: Object.keys(result.changed),
      unchanged: result.unchanged,
      rejected: result.rejected.map((r) => r.variable)
    }, 'reloaded secrets from their _FILE settings')
    if (clientSecretApplies) await manager!.refreshNow()
  }

  return { app, source, reload }
}
