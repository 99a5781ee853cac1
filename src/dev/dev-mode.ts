import { randomBytes } from 'node:crypto'
import { isLoopbackHost } from '../config/loopback.js'
import type { Env } from '../config/load-config.js'
import { startDevIssuer, type DevIssuer } from './dev-issuer.js'
import { SidecarFailure } from '../errors.js'
import { audienceList, DEFAULTS } from '../config/defaults.js'

/** About two minutes, so a refresh (at half the lifetime) shows in the log within a minute. */
export const DEV_TOKEN_LIFETIME_SECONDS = 120
const DEV_CLIENT_ID = 'token-sidecar-dev'

export interface DevSetup {
  env: Env
  issuer: DevIssuer
  /** How the curl line should spell the secret: the generated one, or a reference to the operator's. */
  secretForCurl: string
}

/** Dev mode refuses a setting (a non-loopback host, a busy port): one line on stderr, exit 1. */
export class DevModeError extends SidecarFailure {
  constructor (message: string) {
    super(message, 'DEV_MODE_REFUSED')
  }
}

/**
 * Starts the embedded issuer and returns an environment that points the
 * sidecar at it. Refuses anything but a loopback listen address.
 */
export async function setUpDevMode (env: Env): Promise<DevSetup> {
  const host = env.TOOLBRIDGE_SIDECAR_HOST || DEFAULTS.host
  if (!isLoopbackHost(host)) {
    throw new DevModeError(`--dev refuses TOOLBRIDGE_SIDECAR_HOST=${host}: dev mode only listens on a loopback address such as 127.0.0.1 or ::1`)
  }
  const audience = env.TOOLBRIDGE_AUTH0_AUDIENCE || DEFAULTS.audience
  const clientSecret = randomBytes(32).toString('base64url')
  // The issuer grants whatever the list holds; the sidecar's config check still judges the list.
  const audiences = audienceList(audience)
  const issuer = await startDevIssuer({ clientId: DEV_CLIENT_ID, clientSecret, audiences, lifetimeSeconds: DEV_TOKEN_LIFETIME_SECONDS })

  let sidecarSecret = env.TOOLBRIDGE_SIDECAR_SECRET || undefined
  let secretForCurl = '"$TOOLBRIDGE_SIDECAR_SECRET"'
  if (env.TOOLBRIDGE_SIDECAR_SECRET_FILE) {
    secretForCurl = `"$(cat '${env.TOOLBRIDGE_SIDECAR_SECRET_FILE}')"`
  } else if (sidecarSecret === undefined) {
    sidecarSecret = randomBytes(32).toString('hex')
    secretForCurl = sidecarSecret
  }

  return {
    issuer,
    secretForCurl,
    env: {
      ...env,
      TOOLBRIDGE_AUTH0_CLIENT_ID: DEV_CLIENT_ID,
      TOOLBRIDGE_AUTH0_CLIENT_SECRET: clientSecret,
      TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: undefined,
      // The embedded issuer knows its client by a secret in the body.
      TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'client_secret_post',
      TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: undefined,
      TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE: undefined,
      TOOLBRIDGE_AUTH0_DOMAIN: '127.0.0.1',
      TOOLBRIDGE_AUTH0_AUDIENCE: audience,
      TOOLBRIDGE_AUTH0_TOKEN_URL: issuer.tokenUrl,
      TOOLBRIDGE_JWT_TOKEN: undefined,
      TOOLBRIDGE_SIDECAR_HOST: host,
      TOOLBRIDGE_SIDECAR_SECRET: sidecarSecret
    }
  }
}

/** One line an operator can paste to fetch a token. */
export function curlLine (host: string, port: number, secretForCurl: string): string {
  const authority = host.includes(':') ? `[${host}]` : host
  const header = secretForCurl.startsWith('"') ? `"Authorization: Bearer ${secretForCurl.slice(1, -1)}"` : `'Authorization: Bearer ${secretForCurl}'`
  return `curl -sS -H ${header} http://${authority}:${port}/token`
}
