import { assertionKey, type Config, type Credentials, type Env, type SecretName } from './load-config.js'
import { reloadSecrets } from './reload-secrets.js'

export interface RotationOptions {
  config: Config
  logger: {
    info(obj: object, msg: string): void
    error(obj: object, msg: string): void
  }
  /** The sidecar secret clients present (SidecarSecret). */
  secret: {
    set(value: string): void
    setPrevious(value: string | undefined): void
  }
  /** Told every new secret value, so that none is ever logged. */
  scrubber: { add(value: string | undefined): void }
  /** Puts rotated credentials to use (new client authentication, store cipher, a proving fetch); static mode has none. */
  useCredentials: ((credentials: Credentials) => Promise<void>) | undefined
}

export interface SecretRotation {
  /**
   * SIGHUP: re-reads the `..._FILE` secrets. A changed sidecar secret applies
   * to the next request; a changed client secret or assertion key to the next
   * token request, and a token is fetched at once for each audience to prove
   * it. Bad files are logged and the old values kept. Never throws.
   */
  reload(env: Env): Promise<void>
}

/** Owns the secrets in force and their rotation: what was loaded at start-up, then each reload. */
export function secretRotation (opts: RotationOptions): SecretRotation {
  const { config, logger, secret, scrubber } = opts
  let credentials = config.credentials
  const current: Partial<Record<SecretName, string>> = {
    TOOLBRIDGE_SIDECAR_SECRET: config.sidecarSecret,
    TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: config.sidecarSecretPrevious,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: credentials?.clientSecret,
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: credentials?.assertion?.pem
  }

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
      return { ...credentials, assertion: { ...credentials.assertion, pem, key: assertionKey(pem, 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE', credentials.assertion.configuredAlg) } }
    }
    return undefined
  }

  async function reload (env: Env): Promise<void> {
    const result = await reloadSecrets(env, current)
    for (const { variable, reason } of result.rejected) {
      logger.error({ event: 'config_reload_failed', variable }, `reload rejected ${variable}, keeping the current value: ${reason}`)
    }
    const { TOOLBRIDGE_SIDECAR_SECRET: sidecarSecret, TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: previous, TOOLBRIDGE_AUTH0_CLIENT_SECRET: clientSecret } = result.changed
    scrubber.add(sidecarSecret)
    scrubber.add(previous)
    scrubber.add(clientSecret)
    if (sidecarSecret !== undefined) {
      secret.set(sidecarSecret)
      current.TOOLBRIDGE_SIDECAR_SECRET = sidecarSecret
    }
    if (previous !== undefined) {
      secret.setPrevious(previous)
      current.TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS = previous
    }
    const next = rotated(result.changed)
    if (next !== undefined) credentials = next
    logger.info({
      event: 'config_reloaded',
      changed: Object.keys(result.changed),
      unchanged: result.unchanged,
      rejected: result.rejected.map((r) => r.variable)
    }, 'reloaded secrets from their _FILE settings')
    if (next !== undefined) await opts.useCredentials?.(next)
  }

  return { reload }
}
