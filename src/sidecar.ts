import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config, Env } from './config/load-config.js'
import { secretRotation } from './config/rotation.js'
import type { TokenPool } from './engine/token-pool.js'
import { buildApp } from './http/app.js'
import { SidecarSecret } from './http/sidecar-secret.js'
import { createMetrics, createProxyMetrics } from './metrics/metrics.js'
import type { buildProxyApp } from './proxy/app.js'
import { SecretScrubber } from './secret-scrubber.js'
import { buildTokenSources, type EngineDeps } from './tokens.js'

export interface SidecarDeps extends EngineDeps {
  /**
   * The proxy's app factory (src/proxy/app.ts), required when
   * TOOLBRIDGE_PROXY_TARGET is set; loaded by the caller only then, so a
   * sidecar without the proxy never loads @fastify/reply-from.
   */
  buildProxyApp?: typeof buildProxyApp
}

export interface Sidecar {
  app: FastifyInstance
  /** Every configured audience's token source; the first is the default. */
  tokens: TokenPool
  /** The credential-injecting proxy's app, when TOOLBRIDGE_PROXY_TARGET is set; not listening yet. */
  proxy: FastifyInstance | undefined
  /** SIGHUP: re-reads the `..._FILE` secrets (src/config/rotation.ts). Never throws. */
  reload(env: Env): Promise<void>
}

/** Wires config into token sources, metrics, secret rotation and the HTTP apps; nothing starts or listens yet. */
export function createSidecar (config: Config, logger: Logger, deps: SidecarDeps = {}): Sidecar {
  const secret = new SidecarSecret(config.sidecarSecret, config.sidecarSecretPrevious)
  const scrubber = new SecretScrubber()
  for (const value of [config.sidecarSecret, config.sidecarSecretPrevious, config.credentials?.clientSecret]) scrubber.add(value)

  let tokens: TokenPool | undefined
  const metrics = createMetrics({ audiences: config.audiences, current: (audience) => tokens?.get(audience)?.current() }, deps.clock)
  const sources = buildTokenSources(config, logger, metrics, scrubber, deps)
  tokens = sources.pool

  const app = buildApp({
    tokens,
    secret,
    logger,
    metrics,
    maxConnections: config.maxConnections,
    ...(deps.clock === undefined ? {} : { clock: deps.clock })
  })
  const proxy = config.proxy === undefined
    ? undefined
    : deps.buildProxyApp!({
      ...config.proxy,
      source: tokens.get(config.proxy.audience)!,
      secret,
      logger,
      metrics: createProxyMetrics(metrics.registry),
      maxConnections: config.maxConnections
    })
  const rotation = secretRotation({ config, logger, secret, scrubber, useCredentials: sources.rotate })

  return { app, tokens, proxy, reload: rotation.reload }
}
