import type { Logger } from 'pino'
import type { Config, Credentials } from './config/load-config.js'
import { StaticToken } from './engine/static-token.js'
import { TokenManager } from './engine/token-manager.js'
import { TokenPool } from './engine/token-pool.js'
import type { Clock, Timers } from './engine/types.js'
import type { SidecarMetrics } from './metrics/metrics.js'
import type { SecretScrubber } from './secret-scrubber.js'
import { EntryCipher } from './store/entry-cipher.js'
import { SharedTokenTransport, sharedFetchBoundMs } from './store/shared-transport.js'
import type { FleetStore } from './store/types.js'
import { Auth0Transport, tokenEndpointPool } from './upstream/auth0-transport.js'
import { clientAuthFor } from './upstream/client-auth.js'
import { lowQuotas } from './upstream/rate-limit.js'

/** Test seams for the engine; production uses the system clock, timers and Math.random. */
export interface EngineDeps {
  clock?: Clock
  timers?: Timers
  random?: () => number
  /** The fleet's shared token store (TOOLBRIDGE_TOKEN_STORE_URL), opened by the caller; closed with the pool. */
  tokenStore?: FleetStore
}

export interface TokenSources {
  /** One source per configured audience; closing it closes the transports and the store. */
  pool: TokenPool
  /**
   * Puts rotated credentials to use: every transport authenticates with them,
   * the store's entries are sealed under them, and each audience fetches a
   * token at once to prove them. Absent in static mode, which has none.
   */
  rotate?: (credentials: Credentials) => Promise<void>
}

/** The key store entries are encrypted under: derived from the client secret, or from the private key. */
function storeCipher (credentials: Credentials): EntryCipher {
  const material = credentials.assertion === undefined
    ? Buffer.from(credentials.clientSecret!, 'utf8')
    : credentials.assertion.key.key.export({ type: 'pkcs8', format: 'der' })
  return new EntryCipher(material)
}

/**
 * Builds the token sources the configuration asks for: per audience, the
 * token request (one connection pool for all), the shared store in front of
 * it when one is configured, and the engine that refreshes; or the static
 * token. Nothing starts yet.
 */
export function buildTokenSources (config: Config, logger: Logger, metrics: SidecarMetrics, scrubber: SecretScrubber, deps: EngineDeps = {}): TokenSources {
  const engineDeps = { clock: deps.clock, timers: deps.timers, random: deps.random }
  const engineLog = (audience: string): Logger => logger.child({ component: 'token-engine', audience })
  const credentials = config.credentials
  if (credentials === undefined) {
    const source = new StaticToken({ token: config.staticToken!, logger: engineLog(config.audience), warnBeforeMs: config.refreshBufferMs, ...engineDeps })
    return { pool: new TokenPool([[config.audience, source]]) }
  }
  if (config.staticTokenIgnored) {
    logger.warn({ event: 'static_token_ignored' }, 'TOOLBRIDGE_JWT_TOKEN is ignored: client credentials are set, so the sidecar runs in auto-refresh mode; remove the static token')
  }
  if (config.clientSecretIgnored) {
    logger.warn({ event: 'client_secret_ignored' }, 'TOOLBRIDGE_AUTH0_CLIENT_SECRET is ignored: TOOLBRIDGE_AUTH0_CLIENT_AUTH is private_key_jwt, which sends no shared secret; remove it once the key works')
  }

  const store = deps.tokenStore
  const { clientId, method } = credentials
  const clientAuth = clientAuthFor(credentials)
  // One connection pool for every audience: they share the token endpoint.
  const dispatcher = tokenEndpointPool(config.tokenUrl, config.timeoutMs)
  const onRateLimit = (info: Parameters<typeof metrics.rateLimit>[0]): void => {
    metrics.rateLimit(info)
    for (const low of lowQuotas(info)) {
      const what = low.bucket === undefined ? low.scope.replace('_', ' ') : `${low.scope.replace('_', ' ')} ${low.bucket}`
      logger.warn({ component: 'token-engine', event: 'auth0_quota_low', ...low }, `Auth0 ${what} nearly used up: ${low.remaining} of ${low.limit} left`)
    }
  }

  const transports: Auth0Transport[] = []
  const shared: SharedTokenTransport[] = []
  const managers = config.audiences.map((audience) => {
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
    return new TokenManager({
      transport: viaStore ?? transport,
      logger: engineLog(audience),
      refreshBufferMs: config.refreshBufferMs,
      refreshBudgetPerHour: config.refreshBudgetPerHour,
      // With a store, the documented bound of a wait for a fetch, enforced. Without one the request's own
      // timeout ends it; a second more is only a backstop, so its failure (and its reason) lands first.
      waitLimitMs: viaStore === undefined ? config.timeoutMs + 1000 : sharedFetchBoundMs(config.timeoutMs),
      observer: metrics.observer(audience),
      // The audience is already on every line of engineLog(audience).
      describe: {
        domain: config.domain,
        client_id: clientId,
        client_auth: method,
        token_url: config.tokenUrl.href,
        token_store: store === undefined ? 'none' : 'shared'
      },
      ...engineDeps
    })
  })

  const pool = new TokenPool(config.audiences.map((audience, i) => [audience, managers[i]!]), {
    async onClose () {
      await dispatcher.close()
      await store?.close()
    },
    ...(store === undefined ? {} : { storeHealth: () => store.health() })
  })

  async function rotate (next: Credentials): Promise<void> {
    const nextAuth = clientAuthFor(next)
    for (const transport of transports) transport.setClientAuth(nextAuth)
    // Entries sealed under the old credential no longer open: the next fetch writes one under the new.
    if (shared.length > 0) {
      const cipher = storeCipher(next)
      for (const transport of shared) transport.setCipher(cipher)
    }
    await Promise.all(managers.map((manager) => manager.refreshNow()))
  }

  return { pool, rotate }
}
