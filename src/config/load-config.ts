import { isIP } from 'node:net'
import envSchemaValidate from 'env-schema'
import { B64TOKEN } from '../b64token.js'
import { expiryMs, jwtExp } from '../engine/static-token.js'
import { EXPECTATIONS, envSchema, SECRET_VARIABLES } from './schema.js'
import { isLoopbackHost } from './loopback.js'
import { readSecretFileSync, SecretFileError } from './secret-file.js'

export type Env = Readonly<Record<string, string | undefined>>

/** A setting that stops start-up; the message names the variable and never its secret value. */
export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID'
  readonly variable: string

  constructor (variable: string, message: string) {
    super(message)
    this.name = 'ConfigError'
    this.variable = variable
  }
}

export interface Credentials {
  readonly clientId: string
  readonly clientSecret: string
}

export interface Config {
  readonly mode: 'auto-refresh' | 'static'
  /** Set in auto-refresh mode. */
  readonly credentials: Credentials | undefined
  /** Set in static mode. */
  readonly staticToken: string | undefined
  /** True when TOOLBRIDGE_JWT_TOKEN was given but client credentials win. */
  readonly staticTokenIgnored: boolean
  readonly domain: string
  readonly audience: string
  readonly tokenUrl: URL
  readonly timeoutMs: number
  readonly refreshBufferMs: number
  readonly host: string
  readonly port: number
  readonly sidecarSecret: string
  readonly maxConnections: number
  readonly logLevel: string
}

/** Variables that may instead be read from the file named by `<NAME>_FILE`. */
export const FILE_VARIABLES = ['TOOLBRIDGE_AUTH0_CLIENT_SECRET', 'TOOLBRIDGE_SIDECAR_SECRET'] as const
export type SecretName = typeof FILE_VARIABLES[number]


type RawEnv = Record<string, string>
interface ValidatedEnv {
  TOOLBRIDGE_AUTH0_CLIENT_ID?: string
  TOOLBRIDGE_AUTH0_CLIENT_SECRET?: string
  TOOLBRIDGE_AUTH0_DOMAIN: string
  TOOLBRIDGE_AUTH0_AUDIENCE: string
  TOOLBRIDGE_JWT_TOKEN?: string
  TOOLBRIDGE_AUTH0_TOKEN_URL?: string
  TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: number
  TOOLBRIDGE_REFRESH_BUFFER_SECONDS: number
  TOOLBRIDGE_SIDECAR_HOST: string
  TOOLBRIDGE_SIDECAR_PORT: number
  TOOLBRIDGE_SIDECAR_SECRET: string
  TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: number
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
  const reason = err instanceof SecretFileError ? err.reason : 'unreadable'
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

/**
 * Rules on secret values beyond the schema, for start-up and reloads alike:
 * a sidecar secret must travel in `Authorization: Bearer`, and a client
 * secret with whitespace at either end is almost always a copy-paste slip.
 * `named` is the variable the value came from (NAME or NAME_FILE).
 */
export function checkSecret (variable: SecretName, value: string, named: string): void {
  if (variable === 'TOOLBRIDGE_SIDECAR_SECRET' && !B64TOKEN.test(value)) {
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
  for (const name of FILE_VARIABLES) {
    const value = readFileVariable(env, name)
    if (value !== undefined) {
      raw[name] = value
      fromFile.add(name)
    }
  }
  return { raw, fromFile }
}

function validate (raw: RawEnv, fromFile: ReadonlySet<string> = new Set()): ValidatedEnv {
  try {
    return envSchemaValidate<ValidatedEnv>({ schema: structuredClone(envSchema) as object, data: { ...raw }, env: false })
  } catch (err) {
    const first = (err as { errors?: Array<{ instancePath: string, keyword: string, params: { missingProperty?: string } }> }).errors?.[0]
    /* c8 ignore next -- env-schema always attaches ajv's errors; without them, surface the error as is */
    if (first === undefined) throw err
    if (first.keyword === 'required') {
      const variable = first.params.missingProperty!
      throw new ConfigError(variable, `${variable} is required: expected ${EXPECTATIONS[variable]}`)
    }
    const variable = first.instancePath.slice(1)
    throw expected(variable, raw[variable], fromFile.has(variable) ? `${variable}_FILE` : variable)
  }
}

function tokenUrl (raw: string | undefined, domain: string): URL {
  if (raw === undefined) return new URL(`https://${domain}/oauth/token`)
  let url: URL
  try {
    url = new URL(raw)
  } catch {
    throw expected('TOOLBRIDGE_AUTH0_TOKEN_URL', raw)
  }
  const allowed = url.protocol === 'https:' || (url.protocol === 'http:' && isLoopbackHost(url.hostname))
  if (!allowed || url.username !== '' || url.password !== '') throw expected('TOOLBRIDGE_AUTH0_TOKEN_URL', raw.replace(/\/\/[^@/]*@/, '//'))
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

/** Validates the environment into a frozen config, or throws the first ConfigError. */
export function loadConfig (env: Env): Config {
  const { raw, fromFile } = pickEnv(env)
  const v = validate(raw, fromFile)
  for (const name of FILE_VARIABLES) {
    const value = v[name]
    if (value !== undefined) checkSecret(name, value, fromFile.has(name) ? `${name}_FILE` : name)
  }
  if (v.TOOLBRIDGE_JWT_TOKEN !== undefined) staticToken(v.TOOLBRIDGE_JWT_TOKEN)

  const clientId = v.TOOLBRIDGE_AUTH0_CLIENT_ID
  const clientSecret = v.TOOLBRIDGE_AUTH0_CLIENT_SECRET
  if (clientId !== undefined && clientSecret === undefined) {
    throw new ConfigError('TOOLBRIDGE_AUTH0_CLIENT_SECRET', 'TOOLBRIDGE_AUTH0_CLIENT_SECRET (or TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE) is required when TOOLBRIDGE_AUTH0_CLIENT_ID is set')
  }
  if (clientSecret !== undefined && clientId === undefined) {
    throw new ConfigError('TOOLBRIDGE_AUTH0_CLIENT_ID', 'TOOLBRIDGE_AUTH0_CLIENT_ID is required when TOOLBRIDGE_AUTH0_CLIENT_SECRET is set')
  }
  const credentials = clientId !== undefined && clientSecret !== undefined ? { clientId, clientSecret } : undefined
  if (credentials === undefined && v.TOOLBRIDGE_JWT_TOKEN === undefined) {
    throw new ConfigError('TOOLBRIDGE_AUTH0_CLIENT_ID', 'TOOLBRIDGE_AUTH0_CLIENT_ID and TOOLBRIDGE_AUTH0_CLIENT_SECRET are required (or the deprecated TOOLBRIDGE_JWT_TOKEN for static mode)')
  }
  if (!DOMAIN.test(v.TOOLBRIDGE_AUTH0_DOMAIN)) throw expected('TOOLBRIDGE_AUTH0_DOMAIN', v.TOOLBRIDGE_AUTH0_DOMAIN)
  if (isIP(v.TOOLBRIDGE_SIDECAR_HOST) === 0) throw expected('TOOLBRIDGE_SIDECAR_HOST', v.TOOLBRIDGE_SIDECAR_HOST)

  return Object.freeze({
    mode: credentials === undefined ? 'static' : 'auto-refresh',
    credentials: credentials === undefined ? undefined : Object.freeze(credentials),
    staticToken: credentials === undefined ? v.TOOLBRIDGE_JWT_TOKEN : undefined,
    staticTokenIgnored: credentials !== undefined && v.TOOLBRIDGE_JWT_TOKEN !== undefined,
    domain: v.TOOLBRIDGE_AUTH0_DOMAIN,
    audience: v.TOOLBRIDGE_AUTH0_AUDIENCE,
    tokenUrl: tokenUrl(v.TOOLBRIDGE_AUTH0_TOKEN_URL, v.TOOLBRIDGE_AUTH0_DOMAIN),
    timeoutMs: Math.round(v.TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS * 1000),
    refreshBufferMs: v.TOOLBRIDGE_REFRESH_BUFFER_SECONDS * 1000,
    host: v.TOOLBRIDGE_SIDECAR_HOST,
    port: v.TOOLBRIDGE_SIDECAR_PORT,
    sidecarSecret: v.TOOLBRIDGE_SIDECAR_SECRET,
    maxConnections: v.TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS,
    logLevel: v.LOG_LEVEL
  } satisfies Config)
}
