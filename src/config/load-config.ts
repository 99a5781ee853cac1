import { isIP } from 'node:net'
import { B64TOKEN } from '../b64token.js'
import { ASSERTION_ALGS, AssertionAlgError, AssertionKeyError, parseAssertionKey, type AssertionAlg, type AssertionKey } from './assertion-key.js'
import { validate as validateEnv } from './env-validator.js'
import { EXPECTATIONS, envSchema, SECRET_VARIABLES } from './schema.js'
import { isLoopbackHost } from './loopback.js'
import { readSecretFileSync, SecretFileError } from './secret-file.js'
import { expiryMs, jwtExp } from '../jwt.js'
import { SidecarFailure } from '../errors.js'
import { audienceList } from './defaults.js'

export type Env = Readonly<Record<string, string | undefined>>

/** A setting that stops start-up; the message names the variable and never its secret value. */
export class ConfigError extends SidecarFailure {
  readonly variable: string

  constructor (variable: string, message: string) {
    super(message, 'CONFIG_INVALID')
    this.variable = variable
  }
}

export type ClientAuthMethod = 'client_secret_post' | 'client_secret_basic' | 'private_key_jwt'
export type AudienceParam = 'audience' | 'resource' | 'both'

/** private_key_jwt: how the client assertion is signed and addressed (RFC 7523 §2.2). */
export interface ClientAssertion {
  readonly key: AssertionKey
  /** The PEM text as configured: to tell a changed key file on reload. */
  readonly pem: string
  readonly kid: string | undefined
  readonly audience: string
  /** TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG as set; undefined: by the key's type (`key.alg` is what signs). */
  readonly configuredAlg: AssertionAlg | undefined
}

export interface Credentials {
  readonly clientId: string
  readonly method: ClientAuthMethod
  /** Set for client_secret_post and client_secret_basic. */
  readonly clientSecret: string | undefined
  /** Set for private_key_jwt. */
  readonly assertion: ClientAssertion | undefined
}

/** Upper bound on TOOLBRIDGE_AUTH0_AUDIENCE's list: each audience costs its own tokens. */
export const MAX_AUDIENCES = 20

export interface Config {
  /** Set in auto-refresh mode. */
  readonly credentials: Credentials | undefined
  /** Set in static mode. */
  readonly staticToken: string | undefined
  /** True when TOOLBRIDGE_JWT_TOKEN was given but client credentials win. */
  readonly staticTokenIgnored: boolean
  /** True when a client secret is set but private_key_jwt does not use it. */
  readonly clientSecretIgnored: boolean
  readonly domain: string
  /** The configured audiences in order; the first is the default. */
  readonly audiences: readonly string[]
  /** The default audience, audiences[0]. */
  readonly audience: string
  readonly audienceParam: AudienceParam
  readonly scope: string | undefined
  readonly organization: string | undefined
  readonly tokenUrl: URL
  readonly timeoutMs: number
  readonly refreshBufferMs: number
  /** Refreshes an hour per audience above which a short issued lifetime is warned about. */
  readonly refreshBudgetPerHour: number
  readonly host: string
  readonly port: number
  readonly sidecarSecret: string
  /** Accepted alongside sidecarSecret during a rotation (TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS). */
  readonly sidecarSecretPrevious: string | undefined
  readonly maxConnections: number
  /** The fleet's shared token store, when one is configured. */
  readonly tokenStore: { readonly url: URL, readonly prefix: string } | undefined
  readonly logLevel: string
  /** The credential-injecting proxy, when TOOLBRIDGE_PROXY_TARGET turns it on. */
  readonly proxy: ProxyConfig | undefined
}

export interface ProxyConfig {
  /** The API's origin: every request goes there, whatever it asks for. */
  readonly target: URL
  readonly port: number
  /** Whose tokens the proxy injects: one of `audiences`. */
  readonly audience: string
  readonly maxBodyBytes: number
  readonly connectTimeoutMs: number
  readonly headersTimeoutMs: number
  readonly idleTimeoutMs: number
}

/** Variables that may instead be read from the file named by `<NAME>_FILE`. */
export const FILE_VARIABLES = ['TOOLBRIDGE_AUTH0_CLIENT_SECRET', 'TOOLBRIDGE_SIDECAR_SECRET', 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY', 'TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS'] as const
export type SecretName = typeof FILE_VARIABLES[number]
/** `_FILE` variables read at start-up only: a running process keeps its store connection. */
const STARTUP_FILE_VARIABLES = ['TOOLBRIDGE_TOKEN_STORE_URL'] as const


type RawEnv = Record<string, string>
interface ValidatedEnv {
  TOOLBRIDGE_AUTH0_CLIENT_ID?: string
  TOOLBRIDGE_AUTH0_CLIENT_SECRET?: string
  TOOLBRIDGE_AUTH0_CLIENT_AUTH: ClientAuthMethod
  TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY?: string
  TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KID?: string
  TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE?: string
  TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG?: AssertionAlg
  TOOLBRIDGE_AUTH0_DOMAIN: string
  TOOLBRIDGE_AUTH0_AUDIENCE: string
  TOOLBRIDGE_AUTH0_AUDIENCE_PARAM: AudienceParam
  TOOLBRIDGE_AUTH0_SCOPE?: string
  TOOLBRIDGE_AUTH0_ORGANIZATION?: string
  TOOLBRIDGE_JWT_TOKEN?: string
  TOOLBRIDGE_AUTH0_TOKEN_URL?: string
  TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: number
  TOOLBRIDGE_REFRESH_BUFFER_SECONDS: number
  TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR: number
  TOOLBRIDGE_SIDECAR_HOST: string
  TOOLBRIDGE_SIDECAR_PORT: number
  TOOLBRIDGE_SIDECAR_SECRET: string
  TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS?: string
  TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: number
  TOOLBRIDGE_TOKEN_STORE_URL?: string
  TOOLBRIDGE_TOKEN_STORE_PREFIX: string
  TOOLBRIDGE_PROXY_TARGET?: string
  TOOLBRIDGE_PROXY_PORT: number
  TOOLBRIDGE_PROXY_AUDIENCE?: string
  TOOLBRIDGE_PROXY_MAX_BODY_BYTES: number
  TOOLBRIDGE_PROXY_CONNECT_TIMEOUT_SECONDS: number
  TOOLBRIDGE_PROXY_HEADERS_TIMEOUT_SECONDS: number
  TOOLBRIDGE_PROXY_IDLE_TIMEOUT_SECONDS: number
  LOG_LEVEL: string
}

const DOMAIN = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)+$/i

/** `named` is the variable the value came from: NAME, or NAME_FILE for a value read from a file. */
function expected (variable: string, value?: string, named = variable): ConfigError {
  const got = value === undefined || SECRET_VARIABLES.has(variable) ? '' : `, got ${JSON.stringify(value)}`
  return new ConfigError(named, `${named}: expected ${EXPECTATIONS[variable]}${got}`)
}

/** A file's content as the value: one trailing newline (as `echo` and editors add) is not part of it. */
export function fileValue (variable: string, path: string, content: string): string {
  const value = content.replace(/\r?\n$/, '')
  if (value === '') throw new ConfigError(`${variable}_FILE`, `${variable}_FILE: ${path} is empty; expected ${EXPECTATIONS[variable]}`)
  return value
}

export function fileError (variable: string, path: string, err: unknown): ConfigError {
  /* c8 ignore next -- the secret-file readers throw only SecretFileErrors */
  const reason = err instanceof SecretFileError ? err.message : 'unreadable'
  return new ConfigError(`${variable}_FILE`, `${variable}_FILE: cannot read ${path} (${reason})`)
}

/** Reads `<NAME>_FILE` into NAME: a regular file of at most 64 KiB, never blocking. */
export function readFileVariable (env: Env, variable: string): string | undefined {
  const fileVar = `${variable}_FILE`
  const path = env[fileVar]
  if (path === undefined || path === '') return undefined
  if (env[variable] !== undefined && env[variable] !== '') {
    throw new ConfigError(fileVar, `${fileVar}: set either ${variable} or ${fileVar}, not both`)
  }
  let content: string
  try {
    content = readSecretFileSync(path)
  } catch (err) {
    throw fileError(variable, path, err)
  }
  return fileValue(variable, path, content)
}

const ALG_VAR = 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG'

/** TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG as set (start-up validated it), else undefined. */
export function configuredAlg (env: Env): AssertionAlg | undefined {
  const value = env[ALG_VAR]
  return (ASSERTION_ALGS as readonly string[]).includes(value ?? '') ? value as AssertionAlg : undefined
}

/**
 * The private_key_jwt signing key, or a ConfigError naming `named` (NAME or
 * NAME_FILE), or naming both the key and TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG
 * when the key cannot sign with the algorithm set.
 */
export function assertionKey (value: string, named: string, alg?: AssertionAlg): AssertionKey {
  try {
    return parseAssertionKey(value, alg)
  } catch (err) {
    if (err instanceof AssertionAlgError) throw new ConfigError(ALG_VAR, `${ALG_VAR}=${err.alg} does not fit ${named}: ${err.message}`)
    /* c8 ignore next -- parseAssertionKey throws only AssertionKeyErrors */
    if (!(err instanceof AssertionKeyError)) throw err
    throw new ConfigError(named, `${named}: ${err.message}`)
  }
}

/**
 * Rules on secret values beyond the schema, for start-up and reloads alike:
 * a sidecar secret must travel in `Authorization: Bearer`, a client secret
 * with whitespace at either end is almost always a copy-paste slip, and a
 * client-assertion key must be a usable private key.
 * `named` is the variable the value came from (NAME or NAME_FILE); `env`
 * gives the key's algorithm, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG.
 */
export function checkSecret (variable: SecretName, value: string, named: string, env: Env = {}): void {
  if (variable === 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY') assertionKey(value, named, configuredAlg(env))
  if ((variable === 'TOOLBRIDGE_SIDECAR_SECRET' || variable === 'TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS') && !B64TOKEN.test(value)) {
    throw new ConfigError(named, `${named}: expected ${EXPECTATIONS[variable]}; it has other characters (a space, a second newline, a quote…)`)
  }
  if (variable === 'TOOLBRIDGE_AUTH0_CLIENT_SECRET' && value.trim() !== value) {
    throw new ConfigError(named, `${named}: the client secret starts or ends with whitespace (a space, a tab, a second newline); remove it`)
  }
}

function pickEnv (env: Env): { raw: RawEnv, fromFile: Set<string> } {
  const raw: RawEnv = {}
  const fromFile = new Set<string>()
  for (const name of Object.keys(envSchema.properties)) {
    const value = env[name]
    // An empty variable is how many deploy tools spell "unset".
    if (value !== undefined && value !== '') raw[name] = value
  }
  for (const name of [...FILE_VARIABLES, ...STARTUP_FILE_VARIABLES]) {
    const value = readFileVariable(env, name)
    if (value !== undefined) {
      raw[name] = value
      fromFile.add(name)
    }
  }
  return { raw, fromFile }
}

interface SchemaError { instancePath: string, keyword: string, params: { missingProperty?: string } }
/** envSchema compiled at build time (scripts/build.mjs): coerces types and fills in defaults, in place. */
const check = validateEnv as unknown as ((data: RawEnv) => boolean) & { errors: SchemaError[] | null }

function validate (raw: RawEnv, fromFile: ReadonlySet<string> = new Set()): ValidatedEnv {
  const data = { ...raw }
  if (!check(data)) {
    const first = check.errors![0]!
    if (first.keyword === 'required') {
      const variable = first.params.missingProperty!
      throw new ConfigError(variable, `${variable} is required: expected ${EXPECTATIONS[variable]}`)
    }
    const variable = first.instancePath.slice(1)
    throw expected(variable, raw[variable], fromFile.has(variable) ? `${variable}_FILE` : variable)
  }
  return data as unknown as ValidatedEnv
}

/**
 * A URL as it may be echoed in an error: everything before its last `@` (the
 * user-info, however malformed: a password may hold `/`, `?`, `#` or `@`) is
 * replaced, keeping only the scheme.
 */
function withoutUserInfo (raw: string): string {
  const at = raw.lastIndexOf('@')
  if (at === -1) return raw
  const scheme = /^[a-z][a-z0-9+.-]*:[/\\]*/i.exec(raw)?.[0] ?? ''
  return `${scheme}[redacted]@${raw.slice(at + 1)}`
}

function tokenUrl (raw: string | undefined, domain: string): URL {
  if (raw === undefined) return new URL(`https://${domain}/oauth/token`)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw expected('TOOLBRIDGE_AUTH0_TOKEN_URL', withoutUserInfo(raw))
  }
  const allowed = url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
  if (!allowed || url.username !== '' || url.password !== '') throw expected('TOOLBRIDGE_AUTH0_TOKEN_URL', withoutUserInfo(raw))
  return url
}

/** A static token must fit in a Bearer header, and a JWT's exp must be a time. */
function staticToken (token: string): void {
  if (!B64TOKEN.test(token)) {
    throw new ConfigError('TOOLBRIDGE_JWT_TOKEN', 'TOOLBRIDGE_JWT_TOKEN: expected a bearer token (RFC 6750 characters: letters, digits, - . _ ~ + /, = padding); it has others, such as a space or a newline')
  }
  const exp = jwtExp(token)
  if (exp !== undefined && expiryMs(exp) === undefined) {
    throw new ConfigError('TOOLBRIDGE_JWT_TOKEN', `TOOLBRIDGE_JWT_TOKEN: the JWT's exp claim (${String(exp)}) is not a time any date can hold; check the token`)
  }
}

function tokenStore (url: string | undefined, prefix: string, named: string): Config['tokenStore'] {
  if (!/^[\x21-\x7e]+$/.test(prefix)) throw expected('TOOLBRIDGE_TOKEN_STORE_PREFIX', prefix)
  if (url === undefined) return undefined
  let parsed: URL
  try {
    parsed = new URL(url)
  } catch {
    throw expected('TOOLBRIDGE_TOKEN_STORE_URL', url, named)
  }
  if ((parsed.protocol !== 'redis:' && parsed.protocol !== 'rediss:') || parsed.hostname === '') throw expected('TOOLBRIDGE_TOKEN_STORE_URL', url, named)
  return Object.freeze({ url: parsed, prefix })
}

/** The proxy's settings, or undefined when TOOLBRIDGE_PROXY_TARGET is unset (the proxy is off). */
function proxyConfig (v: ValidatedEnv, audiences: readonly string[]): ProxyConfig | undefined {
  const raw = v.TOOLBRIDGE_PROXY_TARGET
  if (raw === undefined) return undefined
  let url: URL | undefined
  try {
    url = new URL(raw)
  } catch {}
  const allowed = url !== undefined && (url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname)))
  // A value with user-info is never echoed: it may hold a password.
  if (raw.includes('@')) throw expected('TOOLBRIDGE_PROXY_TARGET')
  if (!allowed || url!.pathname !== '/' || url!.search !== '' || url!.hash !== '') throw expected('TOOLBRIDGE_PROXY_TARGET', raw)
  const audience = v.TOOLBRIDGE_PROXY_AUDIENCE ?? audiences[0]!
  if (!audiences.includes(audience)) throw expected('TOOLBRIDGE_PROXY_AUDIENCE', audience)
  if (v.TOOLBRIDGE_PROXY_PORT === v.TOOLBRIDGE_SIDECAR_PORT && v.TOOLBRIDGE_PROXY_PORT !== 0) {
    throw expected('TOOLBRIDGE_PROXY_PORT', String(v.TOOLBRIDGE_PROXY_PORT))
  }
  return Object.freeze({
    target: new URL(url!.origin),
    port: v.TOOLBRIDGE_PROXY_PORT,
    audience,
    maxBodyBytes: v.TOOLBRIDGE_PROXY_MAX_BODY_BYTES,
    connectTimeoutMs: Math.round(v.TOOLBRIDGE_PROXY_CONNECT_TIMEOUT_SECONDS * 1000),
    headersTimeoutMs: Math.round(v.TOOLBRIDGE_PROXY_HEADERS_TIMEOUT_SECONDS * 1000),
    idleTimeoutMs: Math.round(v.TOOLBRIDGE_PROXY_IDLE_TIMEOUT_SECONDS * 1000)
  })
}

/** One or more audiences (config/defaults.ts says how they are listed), at most MAX_AUDIENCES. */
function parseAudiences (value: string): string[] {
  const audiences = audienceList(value)
  if (audiences.length === 0 || audiences.length > MAX_AUDIENCES) throw expected('TOOLBRIDGE_AUTH0_AUDIENCE', value)
  return audiences
}

// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E ), joined by single spaces.
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/
const ORGANIZATION = /^[\x21-\x7e]+$/

function scopeValue (value: string | undefined): string | undefined {
  if (value === undefined) return undefined
  const tokens = value.trim().split(/\s+/)
  if (!tokens.every((token) => SCOPE_TOKEN.test(token))) throw expected('TOOLBRIDGE_AUTH0_SCOPE', value)
  return tokens.join(' ')
}

function named (variable: string, fromFile: ReadonlySet<string>): string {
  return fromFile.has(variable) ? `${variable}_FILE` : variable
}

/**
 * The client's credentials for the chosen client authentication, or
 * undefined when none are set (static mode). Throws when they do not fit.
 */
function credentials (v: ValidatedEnv, fromFile: ReadonlySet<string>): Credentials | undefined {
  const clientId = v.TOOLBRIDGE_AUTH0_CLIENT_ID
  const clientSecret = v.TOOLBRIDGE_AUTH0_CLIENT_SECRET
  const keyText = v.TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY
  const method = v.TOOLBRIDGE_AUTH0_CLIENT_AUTH
  const keyVar = 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY'
  if (clientId === undefined) {
    if (clientSecret !== undefined) {
      throw new ConfigError('TOOLBRIDGE_AUTH0_CLIENT_ID', 'TOOLBRIDGE_AUTH0_CLIENT_ID is required when TOOLBRIDGE_AUTH0_CLIENT_SECRET is set')
    }
    if (keyText !== undefined) {
      throw new ConfigError('TOOLBRIDGE_AUTH0_CLIENT_ID', `TOOLBRIDGE_AUTH0_CLIENT_ID is required when ${keyVar} is set`)
    }
    if (v.TOOLBRIDGE_JWT_TOKEN === undefined) {
      throw new ConfigError('TOOLBRIDGE_AUTH0_CLIENT_ID', method === 'private_key_jwt'
        ? `TOOLBRIDGE_AUTH0_CLIENT_ID and ${keyVar} are required when TOOLBRIDGE_AUTH0_CLIENT_AUTH is private_key_jwt`
        : 'TOOLBRIDGE_AUTH0_CLIENT_ID and TOOLBRIDGE_AUTH0_CLIENT_SECRET are required (or the deprecated TOOLBRIDGE_JWT_TOKEN for static mode)')
    }
    return undefined
  }
  if (method === 'private_key_jwt') {
    if (keyText === undefined) {
      throw new ConfigError(keyVar, `${keyVar} (or ${keyVar}_FILE) is required when TOOLBRIDGE_AUTH0_CLIENT_AUTH is private_key_jwt: expected ${EXPECTATIONS[keyVar]}`)
    }
    return Object.freeze({
      clientId,
      method,
      clientSecret: undefined,
      assertion: Object.freeze({
        key: assertionKey(keyText, named(keyVar, fromFile), v.TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG),
        pem: keyText,
        configuredAlg: v.TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG,
        kid: v.TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KID,
        // What Auth0 expects; other servers take their issuer or token endpoint URL.
        audience: v.TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE ?? `https://${v.TOOLBRIDGE_AUTH0_DOMAIN}/`
      })
    })
  }
  if (keyText !== undefined) {
    throw new ConfigError(named(keyVar, fromFile), `${named(keyVar, fromFile)} is set but TOOLBRIDGE_AUTH0_CLIENT_AUTH is ${method}, which sends the client secret: set TOOLBRIDGE_AUTH0_CLIENT_AUTH=private_key_jwt to sign with the key, or remove it`)
  }
  if (clientSecret === undefined) {
    throw new ConfigError('TOOLBRIDGE_AUTH0_CLIENT_SECRET', `TOOLBRIDGE_AUTH0_CLIENT_SECRET (or TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE) is required when TOOLBRIDGE_AUTH0_CLIENT_ID is set and TOOLBRIDGE_AUTH0_CLIENT_AUTH is ${method}`)
  }
  return Object.freeze({ clientId, method, clientSecret, assertion: undefined })
}

/** Validates the environment into a frozen config, or throws the first ConfigError. */
export function loadConfig (env: Env): Config {
  const { raw, fromFile } = pickEnv(env)
  const v = validate(raw, fromFile)
  for (const name of FILE_VARIABLES) {
    const value = v[name]
    // The key is checked with the client authentication that uses it (below).
    if (value !== undefined && name !== 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY') checkSecret(name, value, named(name, fromFile))
  }
  if (v.TOOLBRIDGE_JWT_TOKEN !== undefined) staticToken(v.TOOLBRIDGE_JWT_TOKEN)
  if (!DOMAIN.test(v.TOOLBRIDGE_AUTH0_DOMAIN)) throw expected('TOOLBRIDGE_AUTH0_DOMAIN', v.TOOLBRIDGE_AUTH0_DOMAIN)
  const creds = credentials(v, fromFile)
  const audiences = parseAudiences(v.TOOLBRIDGE_AUTH0_AUDIENCE)
  if (creds === undefined && audiences.length > 1) {
    throw new ConfigError('TOOLBRIDGE_AUTH0_AUDIENCE', `TOOLBRIDGE_AUTH0_AUDIENCE lists ${audiences.length} audiences, but a static TOOLBRIDGE_JWT_TOKEN is one token for one audience: set client credentials, or list one audience`)
  }
  const organization = v.TOOLBRIDGE_AUTH0_ORGANIZATION
  if (organization !== undefined && !ORGANIZATION.test(organization)) throw expected('TOOLBRIDGE_AUTH0_ORGANIZATION', organization)
  if (isIP(v.TOOLBRIDGE_SIDECAR_HOST) === 0) throw expected('TOOLBRIDGE_SIDECAR_HOST', v.TOOLBRIDGE_SIDECAR_HOST)

  return Object.freeze({
    credentials: creds,
    staticToken: creds === undefined ? v.TOOLBRIDGE_JWT_TOKEN : undefined,
    staticTokenIgnored: creds !== undefined && v.TOOLBRIDGE_JWT_TOKEN !== undefined,
    clientSecretIgnored: creds?.method === 'private_key_jwt' && v.TOOLBRIDGE_AUTH0_CLIENT_SECRET !== undefined,
    domain: v.TOOLBRIDGE_AUTH0_DOMAIN,
    audiences: Object.freeze(audiences),
    audience: audiences[0]!,
    audienceParam: v.TOOLBRIDGE_AUTH0_AUDIENCE_PARAM,
    scope: scopeValue(v.TOOLBRIDGE_AUTH0_SCOPE),
    organization,
    tokenUrl: tokenUrl(v.TOOLBRIDGE_AUTH0_TOKEN_URL, v.TOOLBRIDGE_AUTH0_DOMAIN),
    timeoutMs: Math.round(v.TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS * 1000),
    refreshBufferMs: v.TOOLBRIDGE_REFRESH_BUFFER_SECONDS * 1000,
    refreshBudgetPerHour: v.TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR,
    host: v.TOOLBRIDGE_SIDECAR_HOST,
    port: v.TOOLBRIDGE_SIDECAR_PORT,
    sidecarSecret: v.TOOLBRIDGE_SIDECAR_SECRET,
    sidecarSecretPrevious: v.TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS,
    maxConnections: v.TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS,
    tokenStore: tokenStore(v.TOOLBRIDGE_TOKEN_STORE_URL, v.TOOLBRIDGE_TOKEN_STORE_PREFIX, named('TOOLBRIDGE_TOKEN_STORE_URL', fromFile)),
    logLevel: v.LOG_LEVEL,
    proxy: proxyConfig(v, audiences)
  } satisfies Config)
}
