import { DEFAULTS } from './defaults.js'

/** Shape and defaults of the environment; cross-field rules live in load-config.ts. */
export const envSchema = {
  type: 'object',
  properties: {
    TOOLBRIDGE_AUTH0_CLIENT_ID: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_CLIENT_AUTH: { type: 'string', enum: ['client_secret_post', 'client_secret_basic', 'private_key_jwt'], default: 'client_secret_post' },
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KID: { type: 'string', minLength: 1, maxLength: 256 },
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE: { type: 'string', minLength: 1, maxLength: 2048 },
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: { type: 'string', enum: ['RS256', 'RS384', 'PS256', 'ES256'] },
    TOOLBRIDGE_AUTH0_DOMAIN: { type: 'string', minLength: 1, default: DEFAULTS.domain },
    TOOLBRIDGE_AUTH0_AUDIENCE: { type: 'string', minLength: 1, default: DEFAULTS.audience },
    TOOLBRIDGE_AUTH0_AUDIENCE_PARAM: { type: 'string', enum: ['audience', 'resource', 'both'], default: 'audience' },
    TOOLBRIDGE_AUTH0_SCOPE: { type: 'string', minLength: 1, maxLength: 4096 },
    TOOLBRIDGE_AUTH0_ORGANIZATION: { type: 'string', minLength: 1, maxLength: 256 },
    TOOLBRIDGE_JWT_TOKEN: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_TOKEN_URL: { type: 'string', minLength: 1 },
    TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: { type: 'number', exclusiveMinimum: 0, maximum: 300, default: 10 },
    TOOLBRIDGE_REFRESH_BUFFER_SECONDS: { type: 'integer', minimum: 0, maximum: 2_592_000, default: 300 },
    TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR: { type: 'integer', minimum: 1, maximum: 3600, default: 60 },
    TOOLBRIDGE_SIDECAR_HOST: { type: 'string', minLength: 1, default: DEFAULTS.host },
    TOOLBRIDGE_SIDECAR_PORT: { type: 'integer', minimum: 0, maximum: 65535, default: DEFAULTS.port },
    TOOLBRIDGE_SIDECAR_SECRET: { type: 'string', minLength: 32 },
    TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: { type: 'string', minLength: 32 },
    TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: { type: 'integer', minimum: 1, maximum: 1_000_000, default: DEFAULTS.maxConnections },
    TOOLBRIDGE_TOKEN_STORE_URL: { type: 'string', minLength: 1, maxLength: 4096 },
    TOOLBRIDGE_TOKEN_STORE_PREFIX: { type: 'string', minLength: 1, maxLength: 256, default: 'tokensidecar:v1:' },
    TOOLBRIDGE_PROXY_TARGET: { type: 'string', minLength: 1, maxLength: 2048 },
    TOOLBRIDGE_PROXY_PORT: { type: 'integer', minimum: 0, maximum: 65535, default: DEFAULTS.proxyPort },
    TOOLBRIDGE_PROXY_AUDIENCE: { type: 'string', minLength: 1 },
    TOOLBRIDGE_PROXY_MAX_BODY_BYTES: { type: 'integer', minimum: 0, maximum: 1_073_741_824, default: 10_485_760 },
    TOOLBRIDGE_PROXY_CONNECT_TIMEOUT_SECONDS: { type: 'number', exclusiveMinimum: 0, maximum: 300, default: 10 },
    TOOLBRIDGE_PROXY_HEADERS_TIMEOUT_SECONDS: { type: 'number', exclusiveMinimum: 0, maximum: 3600, default: 300 },
    TOOLBRIDGE_PROXY_IDLE_TIMEOUT_SECONDS: { type: 'number', exclusiveMinimum: 0, maximum: 86_400, default: 300 },
    LOG_LEVEL: { type: 'string', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info' }
  },
  required: ['TOOLBRIDGE_SIDECAR_SECRET']
} as const

/** Variables whose values are never echoed, in errors or anywhere else. */
export const SECRET_VARIABLES: ReadonlySet<string> = new Set([
  'TOOLBRIDGE_AUTH0_CLIENT_SECRET',
  'TOOLBRIDGE_SIDECAR_SECRET',
  'TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS',
  'TOOLBRIDGE_JWT_TOKEN',
  'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY',
  // It may carry a password.
  'TOOLBRIDGE_TOKEN_STORE_URL'
])

/** What each variable must be, in words an operator can act on. */
export const EXPECTATIONS: Readonly<Record<string, string>> = {
  TOOLBRIDGE_AUTH0_CLIENT_ID: 'a non-empty Auth0 client id',
  TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'a non-empty Auth0 client secret',
  TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'one of client_secret_post, client_secret_basic, private_key_jwt',
  TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: 'an unencrypted PEM private key (PKCS#8): RSA of at least 2048 bits or EC P-256',
  TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KID: 'a non-empty key id of at most 256 characters',
  TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE: 'the non-empty audience of the client assertion (the issuer or token endpoint URL), at most 2048 characters',
  TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'one of RS256, RS384, PS256 (an RSA key; Auth0 takes these three) or ES256 (an EC P-256 key)',
  TOOLBRIDGE_AUTH0_DOMAIN: 'an Auth0 tenant host name such as example.us.auth0.com',
  TOOLBRIDGE_AUTH0_AUDIENCE: 'one or more API audiences separated by commas or whitespace (at most 20)',
  TOOLBRIDGE_AUTH0_AUDIENCE_PARAM: 'one of audience, resource, both',
  TOOLBRIDGE_AUTH0_SCOPE: 'space-separated OAuth scopes (printable ASCII without " or \\), at most 4096 characters',
  TOOLBRIDGE_AUTH0_ORGANIZATION: 'an Auth0 organization id (org_…) or name: printable, without spaces, at most 256 characters',
  TOOLBRIDGE_JWT_TOKEN: 'a non-empty token',
  TOOLBRIDGE_AUTH0_TOKEN_URL: 'an https: URL (http: only to a loopback host) without credentials',
  TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: 'a number of seconds above 0 and at most 300',
  TOOLBRIDGE_REFRESH_BUFFER_SECONDS: 'a whole number of seconds from 0 to 2592000',
  TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR: 'a whole number of refreshes an hour from 1 to 3600',
  TOOLBRIDGE_SIDECAR_HOST: 'an IPv4 or IPv6 address literal such as 127.0.0.1 or ::',
  TOOLBRIDGE_SIDECAR_PORT: 'a whole number from 0 to 65535',
  TOOLBRIDGE_SIDECAR_SECRET: 'a shared secret of at least 32 characters, letters, digits and - . _ ~ + / only, = padding at the end (e.g. openssl rand -hex 32)',
  TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: 'the sidecar secret clients held before a rotation, accepted alongside TOOLBRIDGE_SIDECAR_SECRET: the same rules (at least 32 characters, letters, digits and - . _ ~ + / only, = padding at the end)',
  TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: 'a whole number of connections from 1 to 1000000',
  TOOLBRIDGE_TOKEN_STORE_URL: 'a redis:// or rediss:// (TLS) URL of a Redis or Valkey server, e.g. rediss://default:<password>@fly-tokens.upstash.io:6379',
  TOOLBRIDGE_TOKEN_STORE_PREFIX: 'a key prefix of 1 to 256 printable characters without spaces',
  TOOLBRIDGE_PROXY_TARGET: 'the API origin to proxy to: an https: URL (http: only to a loopback host) without a path, query or credentials, e.g. https://toolbridgeapi.erauner.dev',
  TOOLBRIDGE_PROXY_PORT: 'a whole number from 0 to 65535, other than TOOLBRIDGE_SIDECAR_PORT',
  TOOLBRIDGE_PROXY_AUDIENCE: 'one of the audiences in TOOLBRIDGE_AUTH0_AUDIENCE',
  TOOLBRIDGE_PROXY_MAX_BODY_BYTES: 'a whole number of bytes from 0 to 1073741824',
  TOOLBRIDGE_PROXY_CONNECT_TIMEOUT_SECONDS: 'a number of seconds above 0 and at most 300',
  TOOLBRIDGE_PROXY_HEADERS_TIMEOUT_SECONDS: 'a number of seconds above 0 and at most 3600',
  TOOLBRIDGE_PROXY_IDLE_TIMEOUT_SECONDS: 'a number of seconds above 0 and at most 86400',
  LOG_LEVEL: 'one of fatal, error, warn, info, debug, trace, silent'
}
