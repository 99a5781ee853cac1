/** Shape and defaults of the environment; cross-field rules live in load-config.ts. */
export const envSchema = {
  type: 'object',
  properties: {
    TOOLBRIDGE_AUTH0_CLIENT_ID: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_DOMAIN: { type: 'string', minLength: 1, default: 'dev-zysv6k3xo7pkwmcb.us.auth0.com' },
    TOOLBRIDGE_AUTH0_AUDIENCE: { type: 'string', minLength: 1, default: 'https://toolbridgeapi.erauner.dev' },
    TOOLBRIDGE_JWT_TOKEN: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_TOKEN_URL: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: { type: 'number', exclusiveMinimum: 0, maximum: 300, default: 10 },
    TOOLBRIDGE_REFRESH_BUFFER_SECONDS: { type: 'integer', minimum: 0, maximum: 2_592_000, default: 300 },
    TOOLBRIDGE_SIDECAR_HOST: { type: 'string', minLength: 1, default: '127.0.0.1' },
    TOOLBRIDGE_SIDECAR_PORT: { type: 'integer', minimum: 0, maximum: 65535, default: 8787 },
    TOOLBRIDGE_SIDECAR_SECRET: { type: 'string', minLength: 32 },
    TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: { type: 'integer', minimum: 1, maximum: 1_000_000, default: 1024 },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' }
  },
  required: ['TOOLBRIDGE_SIDECAR_SECRET']
} as const

/** Variables whose values are never echoed, in errors or anywhere else. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  'TOOLBRIDGE_AUTH0_CLIENT_SECRET',
  'TOOLBRIDGE_SIDECAR_SECRET',
  'TOOLBRIDGE_JWT_TOKEN'
])

/** What each variable must be, in words an operator can act on. */
export const EXPECTATIONS: Readonly<Record<string, string>> = {
  TOOLBRIDGE_AUTH0_CLIENT_ID: 'a non-empty Auth0 client id',
  TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'a non-empty Auth0 client secret',
  TOOLBRIDGE_AUTH0_DOMAIN: 'an Auth0 tenant host name such as example.us.auth0.com',
  TOOLBRIDGE_AUTH0_AUDIENCE: 'the non-empty API audience',
  TOOLBRIDGE_JWT_TOKEN: 'a non-empty token',
  TOOLBRIDGE_AUTH0_TOKEN_URL: 'an https: URL (http: only to a loopback host) without credentials',
  TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: 'a number of seconds above 0 and at most 300',
  TOOLBRIDGE_REFRESH_BUFFER_SECONDS: 'a whole number of seconds from 0 to 2592000',
  TOOLBRIDGE_SIDECAR_HOST: 'an IPv4 or IPv6 address literal such as 127.0.0.1 or ::',
  TOOLBRIDGE_SIDECAR_PORT: 'a whole number from 0 to 65535',
  TOOLBRIDGE_SIDECAR_SECRET: 'a shared secret of at least 32 characters, letters, digits and - . _ ~ + / only, = padding at the end (e.g. openssl rand -hex 32)',
  TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: 'a whole number of connections from 1 to 1000000',
  LOG_LEVEL: 'one of fatal, error, warn, info, debug, trace, silent'
}
