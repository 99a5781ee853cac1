import type { FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import { assertionKey, type Config, type Credentials, type Env, type SecretName } from './config/load-config.js'
import { reloadSecrets } from './config/reload-secrets.js'
import { StaticToken } from './engine/static-token.js'
import { TokenManager } from './engine/token-manager.js'
import { TokenPool } from './engine/token-pool.js'
import type { Clock, Timers, TokenSource } from './engine/types.js'
import { buildApp } from './http/app.js'
import { SidecarSecret } from './http/sidecar-secret.js'
import { createMetrics } from './metrics/metrics.js'
import { Auth0Transport, tokenEndpointPool } from './upstream/auth0-transport.js'
import { clientAuthFor } from './upstream/client-auth.js'
import { lowQuotas } from './upstream/rate-limit.js'
import { SecretScrubber } from './secret-scrubber.js'
import { EntryCipher } from './store/entry-cipher.js'
import { SharedTokenTransport, sharedFetchBoundMs } from './store/shared-transport.js'
import type { FleetStore } from './store/types.js'

/** Test seams for the engine; production uses the system clock, timers and Math.random. */
export interface SidecarDeps {
  clock?: Clock
  timers?: Timers
  random?: () => number
  /** The fleet's shared token store (TOOLBRIDGE_TOKEN_STORE_URL), opened by the caller; closed with the app. */
  tokenStore?: FleetStore
}

/** The key store entries are encrypted under: derived from the client secret, or from the private key. */
function storeCipher (credentials: Credentials): EntryCipher {
  const material = credentials.assertion === undefined
    ? Buffer.from(credentials.clientSecret!, 'utf8')
    : credentials.assertion.key.key.export({ type: 'pkcs8', format: 'der' })
  return new EntryCipher(material)
}

export interface Sidecar {
  app: FastifyInstance
  /** Every configured audience's token source. */
  tokens: TokenPool
  /** The default audience's. */
  source: TokenSource
  /**
   * SIGHUP: re-reads the `..._FILE` secrets. A changed sidecar secret applies
   * to the next request; a changed client secret or assertion key to the next
   * token request, and a token is fetched at once for each audience to prove
   * it. Bad files are logged and the old values kept. Never throws.
   */
  reload(env: Env): Promise<void>
}

/** Wires config into token sources, metrics and the HTTP app; nothing starts or listens yet. */
export function createSidecar (config: Config, logger: Logger, deps: SidecarDeps = {}): Sidecar {
  const secret = new SidecarSecret(config.sidecarSecret)
  const scrubber = new SecretScrubber()
  scrubber.add(config.sidecarSecret)
  scrubber.add(config.credentials?.clientSecret)
  let credentials = config.credentials
  const current: Partial<Record<SecretName, string>> = {
    TOOLBRIDGE_SIDECAR_SECRET: config.sidecarSecret,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: credentials?.clientSecret,
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: credentials?.assertion?.pem
  }
  let tokens: TokenPool | undefined
  const metrics = createMetrics({ audiences: config.audiences, current: (audience) => tokens?.get(audience)?.current() }, deps.clock)
  const engineDeps = { clock: deps.clock, timers: deps.timers, random: deps.random }
  const engineLog = (audience: string): Logger => logger.child({ component: 'token-engine', audience })

  const transports: Auth0Transport[] = []
  const shared: SharedTokenTransport[] = []
  const managers: TokenManager[] = []
  const store = credentials === undefined ? undefined : deps.tokenStore
  if (credentials !== undefined) {
    const { clientId, method } = credentials
    const clientAuth = clientAuthFor(credentials)
    // One connection pool for every audience: they share the token endpoint.
    const dispatcher = tokenEndpointPool(config.tokenUrl, config.timeoutMs)
    const onRateLimit = (info: Parameters<typeof metrics.rateLimit>[0]): void => {
      metrics.rateLimit(info)
      for (const low of lowQuotas(info)) {
        logger.warn({ component: 'token-engine', event: 'auth0_quota_low', ...low }, `Auth0 ${low.scope.replace('_', ' ')} nearly used up: ${low.remaining} of ${low.limit} left`)
      }
    }
    for (const audience of config.audiences) {
      const transport = new Auth0Transport({
        tokenUrl: config.tokenUrl,
        clientAuth,
        audience,
        audienceParam: config.audienceParam,
        scope: config.scope,
        organization: config.organization,
        timeoutMs: config.timeoutMs,
        dispatcher,
        scrub: (text, maxChars) => scrubber.scrub(text, maxChars),
        onRateLimit
      })
      transports.push(transport)
      const viaStore = store === undefined
        ? undefined
        : new SharedTokenTransport({
          upstream: transport,
          store: store.entry({ tokenUrl: config.tokenUrl.href, clientId, audience, organization: config.organization, scope: config.scope }),
          cipher: storeCipher(credentials),
          refreshBufferMs: config.refreshBufferMs,
          upstreamTimeoutMs: config.timeoutMs,
          observer: metrics.storeObserver(audience),
          onStoreError: (err) => store.failed(err),
          ...(deps.clock === undefined ? {} : { clock: deps.clock }),
          ...(deps.timers === undefined ? {} : { timers: deps.timers })
        })
      if (viaStore !== undefined) shared.push(viaStore)
      managers.push(new TokenManager({
        transport: viaStore ?? transport,
        logger: engineLog(audience),
        refreshBufferMs: config.refreshBufferMs,
        refreshBudgetPerHour: config.refreshBudgetPerHour,
        // With a store, the documented bound of a wait for a fetch, enforced. Without one the request's own
        // timeout ends it; a second more is only a backstop, so its failure (and its reason) lands first.
        waitLimitMs: viaStore === undefined ? config.timeoutMs + 1000 : sharedFetchBoundMs(config.timeoutMs),
        observer: metrics.observer(audience),
        describe: {
          domain: config.domain,
          audience,
          client_id: clientId,
          client_auth: method,
          token_url: config.tokenUrl.href,
          token_store: store === undefined ? 'none' : 'shared'
        },
        ...engineDeps
      }))
    }
    tokens = new TokenPool(config.audiences.map((audience, i) => [audience, managers[i]!]), {
      async onClose () {
        await dispatcher.close()
        await store?.close()
      },
      ...(store === undefined ? {} : { storeHealth: () => store.health() })
    })
    if (config.staticTokenIgnored) {
      logger.warn({ event: 'static_token_ignored' }, 'TOOLBRIDGE_JWT_TOKEN is ignored: client credentials are set, so the sidecar runs in auto-refresh mode; remove the static token')
    }
    if (config.clientSecretIgnored) {
      logger.warn({ event: 'client_secret_ignored' }, 'TOOLBRIDGE_AUTH0_CLIENT_SECRET is ignored: TOOLBRIDGE_AUTH0_CLIENT_AUTH is private_key_jwt, which sends no shared secret; remove it once the key works')
    }
  } else {
    const source = new StaticToken({ token: config.staticToken!, logger: engineLog(config.audience), warnBeforeMs: config.refreshBufferMs, ...engineDeps })
    tokens = new TokenPool([[config.audience, source]])
  }

  const app = buildApp({
    tokens,
    secret,
    logger,
    metrics,
    maxConnections: config.maxConnections,
    ...(deps.clock === undefined ? {} : { clock: deps.clock })
  })

  /** The credentials with a reloaded secret or key, when the configured method uses it. */
  function rotated (changed: Partial<Record<SecretName, string>>): Credentials | undefined {
    if (credentials === undefined) return undefined
    const clientSecret = changed.TOOLBRIDGE_AUTH0_CLIENT_SECRET
    if (clientSecret !== undefined && credentials.clientSecret !== undefined) {
      current.TOOLBRIDGE_AUTH0_CLIENT_SECRET = clientSecret
      return { ...credentials, clientSecret }
    }
    const pem = changed.TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY
    if (pem !== undefined && credentials.assertion !== undefined) {
      current.TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY = pem
      // reloadSecrets checked the key with the same rules, so this parses.
      return { ...credentials, assertion: { ...credentials.assertion, pem, key: assertionKey(pem, 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE') } }
    }
    return undefined
  }

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
    const next = rotated(result.changed)
    if (next !== undefined) {
      credentials = next
      const clientAuth = clientAuthFor(next)
      for (const transport of transports) transport.setClientAuth(clientAuth)
      // Entries sealed under the old credential no longer open: the next fetch writes one under the new.
      const cipher = shared.length === 0 ? undefined : storeCipher(next)
      for (const transport of shared) transport.setCipher(cipher!)
    }
    logger.info({
      event: 'config_reloaded',
      changed: Object.keys(result.changed),
      unchanged: result.unchanged,
      rejected: result.rejected.map((r) => r.variable)
    }, 'reloaded secrets from their _FILE settings')
    if (next !== undefined) await Promise.all(managers.map((manager) => manager.refreshNow()))
  }

  return { app, tokens, source: tokens.default, reload }
}
