import closeWithGrace from 'close-with-grace'
import { ConfigError, loadConfig, type Env } from './config/load-config.js'
import { curlLine, DevModeError, setUpDevMode, type DevSetup } from './dev/dev-mode.js'
import { createLogger, prettyDestination } from './logger.js'
import { SHUTDOWN_GRACE_MS } from './shutdown.js'
import { createSidecar } from './sidecar.js'
import type { FleetStore } from './store/types.js'

/**
 * Runs the sidecar until a signal ends it: config, logger, app, listen,
 * shutdown. Resolves with an exit code when it cannot start, else undefined.
 */
export async function serve (env: Env, dev?: DevSetup): Promise<number | undefined> {
  let config
  try {
    config = loadConfig(env)
  } catch (err) {
    /* c8 ignore next -- loadConfig throws only ConfigError; anything else is a bug to surface as is */
    if (!(err instanceof ConfigError)) throw err
    process.stderr.write(`token-sidecar: invalid configuration: ${err.message}\n`)
    await dev?.issuer.close()
    return 1
  }

  // A person at a terminal reads dev mode's lines pretty-printed; anything else (a pipe, production) gets JSON.
  const logger = createLogger(config.logLevel, dev !== undefined && process.stdout.isTTY ? await prettyDestination() : undefined)
  if (dev !== undefined) {
    logger.warn({ event: 'dev_mode' }, 'DEV MODE: tokens come from an embedded local issuer, not Auth0. NOT FOR PRODUCTION.')
  }
  let tokenStore: FleetStore | undefined
  if (config.tokenStore !== undefined && config.credentials !== undefined) {
    // Loaded only when configured: most sidecars never need a Redis client.
    const { RedisTokenStore } = await import('./store/redis-store.js')
    tokenStore = new RedisTokenStore({ ...config.tokenStore, logger: logger.child({ component: 'token-store' }) })
  }
  // Loaded only when configured, as the store: most sidecars serve GET /token alone.
  const buildProxyApp = config.proxy === undefined ? undefined : (await import('./proxy/app.js')).buildProxyApp
  const { app, tokens, proxy, reload } = createSidecar(config, logger, { ...(tokenStore === undefined ? {} : { tokenStore }), ...(buildProxyApp === undefined ? {} : { buildProxyApp }) })
  // Installed before listening, so a signal during start-up also shuts down cleanly.
  const grace = closeWithGrace({
    delay: SHUTDOWN_GRACE_MS,
    // SIGHUP rotates secrets instead (below).
    skip: ['SIGHUP'],
    /* c8 ignore next -- called only when shutdown overruns its grace period */
    logger: { error: (msg: unknown) => logger.error({ event: 'shutdown_error' }, String(msg)) }
  }, async ({ signal, err }) => {
    /* c8 ignore next -- only an uncaught exception gets here, which no test can provoke from outside */
    if (err !== undefined) logger.error({ event: 'shutdown', err }, 'shutting down after an unexpected error')
    else logger.info({ event: 'shutdown', signal }, 'shutting down: no new connections, finishing in-flight requests')
    await Promise.all([app.close(), proxy?.close()])
    await dev?.issuer.close()
    logger.info({ event: 'stopped' }, 'token sidecar stopped')
  })

  const onHangup = (): void => {
    logger.info({ event: 'config_reload', signal: 'SIGHUP' }, 'SIGHUP: re-reading _FILE secrets')
    void reload(env)
  }
  process.on('SIGHUP', onHangup)
  app.addHook('onClose', async () => { process.removeListener('SIGHUP', onHangup) })

  tokens.start()
  let port = config.port
  try {
    await app.listen({ host: config.host, port })
    if (proxy !== undefined) {
      port = config.proxy!.port
      await proxy.listen({ host: config.host, port })
      logger.info({ event: 'proxy_listening', target: config.proxy!.target.origin, audience: config.proxy!.audience }, `proxying to ${config.proxy!.target.origin} with tokens for ${config.proxy!.audience}`)
    }
  } catch (err) {
    grace.uninstall()
    const code = (err as { code?: unknown }).code
    logger.fatal({ event: 'listen_failed', err }, `cannot listen on ${config.host} port ${port} (${String(code)})`)
    await Promise.all([app.close(), proxy?.close()])
    await dev?.issuer.close()
    return 1
  }

  if (dev !== undefined) {
    const { port } = app.server.address() as { port: number }
    process.stderr.write(`${curlLine(config.host, port, dev.secretForCurl)}\n`)
  }
  return undefined
}

/** `--dev`: an embedded issuer stands in for Auth0. */
export async function serveDev (env: Env): Promise<number | undefined> {
  let dev: DevSetup
  try {
    dev = await setUpDevMode(env)
  } catch (err) {
    /* c8 ignore next -- setUpDevMode's own refusals are DevModeErrors; anything else is a bug */
    if (!(err instanceof DevModeError)) throw err
    process.stderr.write(`token-sidecar: ${err.message}\n`)
    return 1
  }
  return serve(dev.env, dev)
}
