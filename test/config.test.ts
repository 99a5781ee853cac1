import { execFileSync } from 'node:child_process'
import { generateKeyPairSync } from 'node:crypto'
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig, type Env } from '../src/config/load-config.js'
import { isLoopbackHost } from '../src/config/loopback.js'
import { reloadSecrets } from '../src/config/reload-secrets.js'
import { spawnSidecar } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'

const SIDECAR_SECRET = 's'.repeat(16) + 'sidecar-secret-x'
const CLIENT_SECRET = 'client-secret-value-123'
const base: Env = {
  TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid',
  TOOLBRIDGE_AUTH0_CLIENT_SECRET: CLIENT_SECRET,
  TOOLBRIDGE_SIDECAR_SECRET: SIDECAR_SECRET
}

function configError (env: Env): ConfigError {
  try {
    loadConfig(env)
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error('expected a ConfigError')
}

const dir = mkdtempSync(join(tmpdir(), 'sidecar-config-'))
function file (name: string, content: string): string {
  const path = join(dir, name)
  writeFileSync(path, content)
  return path
}

t.test('defaults', async (t) => {
  const config = loadConfig(base)
  t.match(config, {
    credentials: { clientId: 'cid', clientSecret: CLIENT_SECRET },
    staticToken: undefined,
    staticTokenIgnored: false,
    domain: 'dev-zysv6k3xo7pkwmcb.us.auth0.com',
    audience: 'https://toolbridgeapi.erauner.dev',
    timeoutMs: 10_000,
    refreshBufferMs: 300_000,
    refreshBudgetPerHour: 60,
    host: '127.0.0.1',
    port: 8787,
    sidecarSecret: SIDECAR_SECRET,
    logLevel: 'info'
  })
  t.equal(config.tokenUrl.href, 'https://dev-zysv6k3xo7pkwmcb.us.auth0.com/oauth/token')
  t.ok(Object.isFrozen(config))
})

t.test('every setting is read', async (t) => {
  const config = loadConfig({
    ...base,
    TOOLBRIDGE_AUTH0_DOMAIN: 'tenant.eu.auth0.com',
    TOOLBRIDGE_AUTH0_AUDIENCE: 'https://api.example',
    TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: '2.5',
    TOOLBRIDGE_REFRESH_BUFFER_SECONDS: '60',
    TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR: '120',
    TOOLBRIDGE_SIDECAR_HOST: '::',
    TOOLBRIDGE_SIDECAR_PORT: '9000',
    LOG_LEVEL: 'debug'
  })
  t.match(config, { domain: 'tenant.eu.auth0.com', audience: 'https://api.example', timeoutMs: 2500, refreshBufferMs: 60_000, refreshBudgetPerHour: 120, host: '::', port: 9000, logLevel: 'debug' })
  t.equal(config.tokenUrl.href, 'https://tenant.eu.auth0.com/oauth/token', 'the token URL follows the domain')
})

t.test('token URL override: https anywhere, http only to loopback', async (t) => {
  t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_TOKEN_URL: 'https://login.example.com/oauth/token' }).tokenUrl.host, 'login.example.com')
  for (const url of ['http://127.0.0.1:3000/oauth/token', 'http://localhost:3000/oauth/token', 'http://[::1]:3000/oauth/token']) {
    t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_TOKEN_URL: url }).tokenUrl.href, url)
  }
  for (const url of ['http://tenant.auth0.com/oauth/token', 'http://10.0.0.1/oauth/token', 'ftp://x/y', 'not a url', 'https://user:pw@tenant.auth0.com/oauth/token']) {
    const err = configError({ ...base, TOOLBRIDGE_AUTH0_TOKEN_URL: url })
    t.equal(err.variable, 'TOOLBRIDGE_AUTH0_TOKEN_URL', url)
    t.notMatch(err.message, 'pw@', 'credentials in the URL are not echoed')
  }
})

// Malformed on purpose: a password holding `/`, `?`, `#`, `@` or a space makes the URL unparsable.
const MALFORMED_TOKEN_URLS = [
  'https://cid:pass/word-never-echoed@tenant.auth0.com/oauth/token',
  'https://cid:pass?word-never-echoed@tenant.auth0.com/oauth/token',
  'https://cid:pass#word-never-echoed@tenant.auth0.com/oauth/token',
  'https://cid:pass@word-never-echoed@tenant.auth0.com/oauth/token',
  'https://cid:pass word-never-echoed@tenant.auth0.com/oauth/token',
  'https:/cid:password-never-echoed@tenant.auth0.com/oauth/token',
  'http://cid:password-never-echoed@10.0.0.1/oauth/token'
]

registerSecret('word-never-echoed', 'password-never-echoed')

t.test('a token URL\'s user-info is never echoed, however malformed the URL', async (t) => {
  for (const url of MALFORMED_TOKEN_URLS) {
    const err = configError({ ...base, TOOLBRIDGE_AUTH0_TOKEN_URL: url })
    t.equal(err.variable, 'TOOLBRIDGE_AUTH0_TOKEN_URL', url)
    t.notMatch(err.message, /never-echoed|cid:/, url)
    t.match(err.message, /, got "https?:\/+\[redacted\]@tenant\.auth0\.com\/oauth\/token"$|, got "http:\/\/\[redacted\]@10\.0\.0\.1\/oauth\/token"$/, 'the rest of it is shown')
  }
  t.match(configError({ ...base, TOOLBRIDGE_AUTH0_TOKEN_URL: 'not a url' }).message, /got "not a url"$/, 'a value without user-info is shown whole')
  const schemeless = configError({ ...base, TOOLBRIDGE_AUTH0_TOKEN_URL: '//cid:password-never-echoed@tenant.auth0.com/oauth/token' }).message
  t.match(schemeless, /got "\[redacted\]@tenant\.auth0\.com\/oauth\/token"$/, 'without a scheme too')
})

t.test('through the CLI: stderr never shows a token URL\'s user-info', async (t) => {
  for (const url of MALFORMED_TOKEN_URLS.slice(0, 2)) {
    const sidecar = spawnSidecar({ ...base as Record<string, string>, TOOLBRIDGE_AUTH0_TOKEN_URL: url })
    const exit = await sidecar.exited
    t.equal(exit.code, 1)
    t.match(sidecar.stderr(), /^token-sidecar: invalid configuration: TOOLBRIDGE_AUTH0_TOKEN_URL: expected an https: URL/)
    t.notMatch(sidecar.stderr(), /never-echoed/, url)
    t.same(sidecar.lines, [], 'no log line either')
  }
})

t.test('one clear message per bad setting, naming the variable', async (t) => {
  const cases: Array<[Env, string, RegExp]> = [
    [{ ...base, TOOLBRIDGE_SIDECAR_PORT: 'eighty' }, 'TOOLBRIDGE_SIDECAR_PORT', /whole number from 0 to 65535, got "eighty"/],
    [{ ...base, TOOLBRIDGE_SIDECAR_PORT: '70000' }, 'TOOLBRIDGE_SIDECAR_PORT', /65535/],
    [{ ...base, TOOLBRIDGE_SIDECAR_HOST: 'localhost' }, 'TOOLBRIDGE_SIDECAR_HOST', /IPv4 or IPv6 address literal/],
    [{ ...base, TOOLBRIDGE_SIDECAR_HOST: '0.0.0.0.0' }, 'TOOLBRIDGE_SIDECAR_HOST', /literal/],
    [{ ...base, TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: '0' }, 'TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS', /above 0/],
    [{ ...base, TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: 'ten' }, 'TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS', /seconds/],
    [{ ...base, TOOLBRIDGE_REFRESH_BUFFER_SECONDS: '-1' }, 'TOOLBRIDGE_REFRESH_BUFFER_SECONDS', /whole number/],
    [{ ...base, TOOLBRIDGE_REFRESH_BUFFER_SECONDS: '1.5' }, 'TOOLBRIDGE_REFRESH_BUFFER_SECONDS', /whole number/],
    [{ ...base, TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR: '0' }, 'TOOLBRIDGE_REFRESH_BUDGET_PER_HOUR', /refreshes an hour from 1 to 3600/],
    [{ ...base, TOOLBRIDGE_AUTH0_DOMAIN: 'https://tenant.auth0.com' }, 'TOOLBRIDGE_AUTH0_DOMAIN', /host name/],
    [{ ...base, LOG_LEVEL: 'verbose' }, 'LOG_LEVEL', /one of fatal, error/],
    [{ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined }, 'TOOLBRIDGE_SIDECAR_SECRET', /is required: expected a shared secret of at least 32 characters/],
    [{ ...base, TOOLBRIDGE_SIDECAR_SECRET: 'short-secret-value' }, 'TOOLBRIDGE_SIDECAR_SECRET', /expected a shared secret of at least 32 characters/],
    [{ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: undefined }, 'TOOLBRIDGE_AUTH0_CLIENT_SECRET', /required when TOOLBRIDGE_AUTH0_CLIENT_ID is set/],
    [{ ...base, TOOLBRIDGE_AUTH0_CLIENT_ID: undefined }, 'TOOLBRIDGE_AUTH0_CLIENT_ID', /required when TOOLBRIDGE_AUTH0_CLIENT_SECRET is set/],
    [{ TOOLBRIDGE_SIDECAR_SECRET: SIDECAR_SECRET }, 'TOOLBRIDGE_AUTH0_CLIENT_ID', /TOOLBRIDGE_JWT_TOKEN/]
  ]
  for (const [env, variable, message] of cases) {
    const err = configError(env)
    t.equal(err.variable, variable, `${variable}: ${err.message}`)
    t.match(err.message, message)
    t.notOk(err.message.includes('\n'), 'one line')
    t.match(err.message, new RegExp(`^${variable}`), 'the message starts with the variable')
  }
})

t.test('secret values are never echoed', async (t) => {
  const short = 'tooshort-secret'
  t.notMatch(configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET: short }).message, short)
  const err = configError({ ...base, TOOLBRIDGE_SIDECAR_PORT: 'x' })
  t.notMatch(err.message, CLIENT_SECRET)
  t.notMatch(err.message, SIDECAR_SECRET)
})

t.test('empty variables count as unset', async (t) => {
  const config = loadConfig({ ...base, TOOLBRIDGE_JWT_TOKEN: '', TOOLBRIDGE_SIDECAR_PORT: '', TOOLBRIDGE_AUTH0_TOKEN_URL: '' })
  t.equal(config.port, 8787)
  t.equal(config.staticTokenIgnored, false)
  t.equal(configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET: '' }).variable, 'TOOLBRIDGE_SIDECAR_SECRET')
})

t.test('modes: credentials win over a static token, with a flag for the warning', async (t) => {
  t.match(loadConfig({ ...base, TOOLBRIDGE_JWT_TOKEN: 'static' }), { credentials: { clientId: String }, staticToken: undefined, staticTokenIgnored: true })
  t.match(loadConfig({ TOOLBRIDGE_JWT_TOKEN: 'static', TOOLBRIDGE_SIDECAR_SECRET: SIDECAR_SECRET }), { staticToken: 'static', credentials: undefined, staticTokenIgnored: false })
})

t.test('_FILE variables', async (t) => {
  const config = loadConfig({
    TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid',
    TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: file('client-secret', `${CLIENT_SECRET}\n`),
    TOOLBRIDGE_SIDECAR_SECRET_FILE: file('sidecar-secret', `${SIDECAR_SECRET}\r\n`)
  })
  t.equal(config.credentials?.clientSecret, CLIENT_SECRET, 'trailing newline trimmed')
  t.equal(config.sidecarSecret, SIDECAR_SECRET, 'trailing CRLF trimmed')
  t.equal(loadConfig({ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined, TOOLBRIDGE_SIDECAR_SECRET_FILE: file('no-newline', SIDECAR_SECRET) }).sidecarSecret, SIDECAR_SECRET)

  const both = configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET_FILE: file('x', SIDECAR_SECRET) })
  t.match(both, { variable: 'TOOLBRIDGE_SIDECAR_SECRET_FILE', message: /either TOOLBRIDGE_SIDECAR_SECRET or TOOLBRIDGE_SIDECAR_SECRET_FILE/ })
  const missing = configError({ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: undefined, TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: join(dir, 'nope') })
  t.match(missing, { variable: 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', message: /cannot read .*nope \(ENOENT\)/ })
  const empty = configError({ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: undefined, TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: file('empty', '\n') })
  t.match(empty, { variable: 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', message: /is empty/ })
  const short = configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined, TOOLBRIDGE_SIDECAR_SECRET_FILE: file('short', 'abc\n') })
  t.match(short, { variable: 'TOOLBRIDGE_SIDECAR_SECRET_FILE', message: /^TOOLBRIDGE_SIDECAR_SECRET_FILE: expected .*at least 32/ })
  t.notMatch(short.message, 'abc')
  const unreadable = configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined, TOOLBRIDGE_SIDECAR_SECRET_FILE: dir })
  t.match(unreadable.message, /cannot read .* \(not a regular file\)/)
})

t.test('loopback hosts', async (t) => {
  for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', '::1', '[::1]', '0:0:0:0:0:0:0:1']) t.ok(isLoopbackHost(host), host)
  for (const host of ['0.0.0.0', '::', '10.0.0.1', 'example.com', '128.0.0.1', '[::]']) t.notOk(isLoopbackHost(host), host)
})

t.test('secret values: one trailing newline is trimmed, anything else odd is refused, naming the variable', async (t) => {
  const odd: Array<[string, string]> = [
    ['a second newline', `${SIDECAR_SECRET}\n\n`],
    ['a trailing space', `${SIDECAR_SECRET} \n`],
    ['a leading space', ` ${SIDECAR_SECRET}`],
    ['a space inside', `${SIDECAR_SECRET.slice(0, 20)} ${SIDECAR_SECRET.slice(20)}`],
    ['a quote', `"${SIDECAR_SECRET}"`],
    ['a tab', `${SIDECAR_SECRET}\t`],
    ['padding in the middle', `${SIDECAR_SECRET.slice(0, 20)}=${SIDECAR_SECRET.slice(20)}`]
  ]
  for (const [what, content] of odd) {
    const fromFile = configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined, TOOLBRIDGE_SIDECAR_SECRET_FILE: file('odd-sidecar', content) })
    t.match(fromFile, { variable: 'TOOLBRIDGE_SIDECAR_SECRET_FILE', message: /^TOOLBRIDGE_SIDECAR_SECRET_FILE: expected .*letters, digits/ }, `sidecar secret file with ${what}`)
    t.notOk(fromFile.message.includes(SIDECAR_SECRET), 'the value is not echoed')
    const direct = configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET: content.replace(/\n$/, '') })
    t.match(direct, { variable: 'TOOLBRIDGE_SIDECAR_SECRET' }, `sidecar secret variable with ${what}`)
  }
  for (const good of [`${SIDECAR_SECRET}\n`, `${SIDECAR_SECRET}\r\n`, 'a-b.c_d~e+f/g'.repeat(3) + '==']) {
    t.ok(loadConfig({ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined, TOOLBRIDGE_SIDECAR_SECRET_FILE: file('good-sidecar', good) }), JSON.stringify(good))
  }
  for (const [what, content] of [['a trailing space', `${CLIENT_SECRET} `], ['a second newline', `${CLIENT_SECRET}\n\n`], ['a leading tab', `\t${CLIENT_SECRET}`]]) {
    const fromFile = configError({ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: undefined, TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: file('odd-client', content!) })
    t.match(fromFile, { variable: 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', message: /whitespace/ }, `client secret file with ${what!}`)
    t.notOk(fromFile.message.includes(CLIENT_SECRET))
    t.match(configError({ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: content!.replace(/\n$/, '') }), { variable: 'TOOLBRIDGE_AUTH0_CLIENT_SECRET' }, `client secret variable with ${what!}`)
  }
  t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'in side spaces are fine' }).credentials?.clientSecret, 'in side spaces are fine')
})

t.test('secret files: a regular file of at most 64 KiB; a FIFO or device never blocks start-up', async (t) => {
  const fifo = join(dir, 'fifo')
  execFileSync('mkfifo', [fifo])
  const started = Date.now()
  t.match(configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined, TOOLBRIDGE_SIDECAR_SECRET_FILE: fifo }), { variable: 'TOOLBRIDGE_SIDECAR_SECRET_FILE', message: /cannot read .*fifo \(not a regular file\)/ })
  t.ok(Date.now() - started < 1000, 'answered at once')
  t.match(configError({ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined, TOOLBRIDGE_SIDECAR_SECRET_FILE: '/dev/zero' }), { message: /not a regular file/ })
  t.match(configError({ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: undefined, TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: file('big', 'x'.repeat(64 * 1024 + 1)) }), { variable: 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', message: /larger than 64 KiB/ })
  t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: undefined, TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: file('max', 'x'.repeat(64 * 1024)) }).credentials?.clientSecret?.length, 64 * 1024, '64 KiB exactly is fine')
  const link = join(dir, 'link')
  symlinkSync(file('target', `${SIDECAR_SECRET}\n`), link)
  t.equal(loadConfig({ ...base, TOOLBRIDGE_SIDECAR_SECRET: undefined, TOOLBRIDGE_SIDECAR_SECRET_FILE: link }).sidecarSecret, SIDECAR_SECRET, 'a symlink to a regular file (Kubernetes, Fly secrets) is followed')
})

t.test('a static token must fit a Bearer header, and a JWT exp must be a time', async (t) => {
  const b64 = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url')
  const env = { TOOLBRIDGE_SIDECAR_SECRET: SIDECAR_SECRET }
  for (const exp of [1e15, -1e15]) {
    const err = configError({ ...env, TOOLBRIDGE_JWT_TOKEN: `${b64({ alg: 'none' })}.${b64({ exp })}.sig` })
    t.match(err, { variable: 'TOOLBRIDGE_JWT_TOKEN', message: /^TOOLBRIDGE_JWT_TOKEN: the JWT's exp claim \(.*\) is not a time/ })
    t.notMatch(err.message, /\n/, 'one line')
  }
  t.match(configError({ ...env, TOOLBRIDGE_JWT_TOKEN: 'two words' }), { variable: 'TOOLBRIDGE_JWT_TOKEN', message: /RFC 6750/ })
  t.match(loadConfig({ ...env, TOOLBRIDGE_JWT_TOKEN: `${b64({ alg: 'none' })}.${b64({ exp: 1_900_000_000 })}.sig` }), { credentials: undefined, staticToken: String })
})

t.test('connection cap', async (t) => {
  t.equal(loadConfig(base).maxConnections, 1024)
  t.equal(loadConfig({ ...base, TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: '10' }).maxConnections, 10)
  for (const bad of ['0', '-1', '1.5', 'many']) {
    t.match(configError({ ...base, TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: bad }), { variable: 'TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS', message: /from 1 to 1000000/ }, bad)
  }
})

const rsaPem = (bits: number): string => generateKeyPairSync('rsa', { modulusLength: bits }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
const ecPem = (curve: string): string => generateKeyPairSync('ec', { namedCurve: curve }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
const KEY_VAR = 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY'
const jwtEnv = (key: Env = {}): Env => ({ TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_SIDECAR_SECRET: SIDECAR_SECRET, TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'private_key_jwt', ...key })

t.test('client authentication: post by default, Basic, or private_key_jwt', async (t) => {
  t.match(loadConfig(base).credentials, { clientId: 'cid', method: 'client_secret_post', clientSecret: CLIENT_SECRET, assertion: undefined })
  t.match(loadConfig({ ...base, TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'client_secret_basic' }).credentials, { method: 'client_secret_basic', clientSecret: CLIENT_SECRET })
  t.match(configError({ ...base, TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'tls_client_auth' }), { variable: 'TOOLBRIDGE_AUTH0_CLIENT_AUTH', message: /expected one of client_secret_post, client_secret_basic, private_key_jwt, got "tls_client_auth"/ })
  t.match(configError({ ...base, TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'client_secret_basic', TOOLBRIDGE_AUTH0_CLIENT_SECRET: undefined }), { variable: 'TOOLBRIDGE_AUTH0_CLIENT_SECRET', message: /TOOLBRIDGE_AUTH0_CLIENT_SECRET \(or TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE\) is required .* client_secret_basic/ })

  const pem = rsaPem(2048)
  const rsa = loadConfig(jwtEnv({ [KEY_VAR]: pem }))
  t.match(rsa.credentials, { clientId: 'cid', method: 'private_key_jwt', clientSecret: undefined, assertion: { pem, kid: undefined, audience: 'https://dev-zysv6k3xo7pkwmcb.us.auth0.com/', key: { alg: 'RS256' } } })
  t.equal(rsa.clientSecretIgnored, false)
  t.equal(rsa.credentials?.assertion?.key.key.type, 'private')
  const ec = loadConfig(jwtEnv({
    [`${KEY_VAR}_FILE`]: file('ec.pem', ecPem('P-256')),
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KID: 'kid-1',
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE: 'https://op.example/token',
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'left-over-secret'
  }))
  t.match(ec.credentials, { assertion: { kid: 'kid-1', audience: 'https://op.example/token', key: { alg: 'ES256' } }, clientSecret: undefined })
  t.equal(ec.clientSecretIgnored, true, 'a left-over secret is ignored with a warning, not sent')
  t.match(loadConfig(jwtEnv({ [KEY_VAR]: pem, TOOLBRIDGE_AUTH0_DOMAIN: 'acme.eu.auth0.com' })).credentials?.assertion, { audience: 'https://acme.eu.auth0.com/' }, 'Auth0 expects https://<domain>/')
  t.match(loadConfig(jwtEnv({ [KEY_VAR]: pem.trim().replaceAll('\n', '\\n') })).credentials?.assertion?.key, { alg: 'RS256' }, 'newlines written as \\n (one-line secret stores)')
  const pkcs1 = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }) as string
  t.match(loadConfig(jwtEnv({ [KEY_VAR]: pkcs1 })).credentials?.assertion?.key, { alg: 'RS256' }, 'the older PKCS#1 form works too')
})

t.test('private_key_jwt: every bad key is a one-line error naming the variable, never echoing the key', async (t) => {
  const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  const encrypted = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }) as string
  const ed25519 = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
  const cases: Array<[string, Env, RegExp, string?]> = [
    ['missing', jwtEnv(), /TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY \(or TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE\) is required when TOOLBRIDGE_AUTH0_CLIENT_AUTH is private_key_jwt/],
    ['not PEM', jwtEnv({ [KEY_VAR]: 'c2VjcmV0LWtleS1tYXRlcmlhbA==' }), /expected a PEM private key/],
    ['garbage PEM', jwtEnv({ [KEY_VAR]: '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n' }), /not a readable PEM private key/],
    ['public key', jwtEnv({ [KEY_VAR]: publicKey.export({ type: 'spki', format: 'pem' }) as string }), /is a public key or certificate; the sidecar needs the private key/],
    ['encrypted', jwtEnv({ [KEY_VAR]: encrypted }), /encrypted with a passphrase/],
    ['short RSA', jwtEnv({ [KEY_VAR]: rsaPem(1024) }), /the RSA key has 1024 bits; at least 2048 are required/],
    ['P-384', jwtEnv({ [KEY_VAR]: ecPem('P-384') }), /curve secp384r1; only P-256/],
    ['Ed25519', jwtEnv({ [KEY_VAR]: ed25519 }), /a ed25519 key is not supported/],
    ['from a file', jwtEnv({ [`${KEY_VAR}_FILE`]: file('short.pem', rsaPem(1024)) }), /^TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE: the RSA key has 1024 bits/, `${KEY_VAR}_FILE`],
    ['without a client id', { ...jwtEnv({ [KEY_VAR]: rsaPem(2048) }), TOOLBRIDGE_AUTH0_CLIENT_ID: undefined }, /TOOLBRIDGE_AUTH0_CLIENT_ID is required when TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY is set/, 'TOOLBRIDGE_AUTH0_CLIENT_ID'],
    ['nothing at all', { TOOLBRIDGE_SIDECAR_SECRET: SIDECAR_SECRET, TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'private_key_jwt' }, /TOOLBRIDGE_AUTH0_CLIENT_ID and TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY are required/, 'TOOLBRIDGE_AUTH0_CLIENT_ID'],
    ['a key without private_key_jwt', { ...base, [KEY_VAR]: rsaPem(2048) }, /TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY is set but TOOLBRIDGE_AUTH0_CLIENT_AUTH is client_secret_post/]
  ]
  for (const [name, env, message, variable] of cases) {
    const err = configError(env)
    t.match(err, { variable: variable ?? KEY_VAR, message }, name)
    t.notMatch(err.message, /MII|AAAA|c2VjcmV0/, `${name}: no key material in the message`)
  }
})

t.test('private_key_jwt algorithms: RS256, RS384 or PS256 with an RSA key, ES256 with P-256; a mismatch names both', async (t) => {
  const rsa = rsaPem(2048)
  const ec = ecPem('P-256')
  for (const alg of ['RS256', 'RS384', 'PS256'] as const) {
    t.match(loadConfig(jwtEnv({ [KEY_VAR]: rsa, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: alg })).credentials?.assertion, { configuredAlg: alg, key: { alg } }, alg)
  }
  t.match(loadConfig(jwtEnv({ [KEY_VAR]: rsa })).credentials?.assertion, { configuredAlg: undefined, key: { alg: 'RS256' } }, 'RS256 by default for RSA')
  t.match(loadConfig(jwtEnv({ [KEY_VAR]: ec })).credentials?.assertion, { configuredAlg: undefined, key: { alg: 'ES256' } }, 'ES256 by default for P-256')
  t.match(loadConfig(jwtEnv({ [KEY_VAR]: ec, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'ES256' })).credentials?.assertion, { configuredAlg: 'ES256', key: { alg: 'ES256' } })
  const cases: Array<[string, Env, RegExp, string]> = [
    ['RSA key, ES256', jwtEnv({ [KEY_VAR]: rsa, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'ES256' }),
      /^TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG=ES256 does not fit TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: an RSA key \(2048 bits\) signs RS256, RS384 or PS256, not ES256; ES256 needs an EC P-256 key$/, 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG'],
    ['P-256 key, PS256, from a file', jwtEnv({ [`${KEY_VAR}_FILE`]: file('ec-alg.pem', ec), TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'PS256' }),
      /^TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG=PS256 does not fit TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE: an EC P-256 key signs ES256, not PS256; PS256 needs an RSA key of at least 2048 bits$/, 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG'],
    ['a short key is still the key\'s error', jwtEnv({ [KEY_VAR]: rsaPem(1024), TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'ES256' }), /the RSA key has 1024 bits/, KEY_VAR],
    ['HS256', jwtEnv({ [KEY_VAR]: rsa, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'HS256' }),
      /^TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: expected one of RS256, RS384, PS256 \(an RSA key; Auth0 takes these three\) or ES256 \(an EC P-256 key\), got "HS256"$/, 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG'],
    ['lower case', jwtEnv({ [KEY_VAR]: rsa, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'rs256' }), /expected one of RS256/, 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG']
  ]
  for (const [name, env, message, variable] of cases) {
    const err = configError(env)
    t.match(err, { variable, message }, name)
    t.notMatch(err.message, /MII|BEGIN/, `${name}: no key material in the message`)
  }
})

t.test('a reloaded key must fit TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG too', async (t) => {
  const keyFile = file('reload-alg.pem', rsaPem(2048))
  const env = jwtEnv({ [`${KEY_VAR}_FILE`]: keyFile, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'PS256' })
  const config = loadConfig(env)
  const current = { [KEY_VAR]: config.credentials!.assertion!.pem }
  writeFileSync(keyFile, ecPem('P-256'))
  const rejected = await reloadSecrets(env, current)
  t.same(rejected.changed, {})
  t.match(rejected.rejected, [{ variable: `${KEY_VAR}_FILE`, reason: /^TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG=PS256 does not fit TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE: an EC P-256 key signs ES256/ }])
  const rsa = rsaPem(3072)
  writeFileSync(keyFile, rsa)
  t.same(Object.keys((await reloadSecrets(env, current)).changed), [KEY_VAR], 'another RSA key fits')
  writeFileSync(keyFile, ecPem('P-256'))
  t.same(Object.keys((await reloadSecrets({ ...env, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: undefined }, current)).changed), [KEY_VAR], 'without the setting, the key decides')
})

t.test('audiences: one or more, split on commas and whitespace, the first is the default', async (t) => {
  t.same(loadConfig(base).audiences, ['https://toolbridgeapi.erauner.dev'])
  const several = loadConfig({ ...base, TOOLBRIDGE_AUTH0_AUDIENCE: ' https://a.example, https://b.example\n https://c.example,,https://a.example ' })
  t.same(several.audiences, ['https://a.example', 'https://b.example', 'https://c.example'], 'in order, repeats dropped')
  t.equal(several.audience, 'https://a.example')
  t.ok(Object.isFrozen(several.audiences))
  t.match(configError({ ...base, TOOLBRIDGE_AUTH0_AUDIENCE: ' , ' }), { variable: 'TOOLBRIDGE_AUTH0_AUDIENCE', message: /one or more API audiences/ })
  const many = Array.from({ length: 21 }, (_, i) => `https://api${i}.example`).join(',')
  t.match(configError({ ...base, TOOLBRIDGE_AUTH0_AUDIENCE: many }), { variable: 'TOOLBRIDGE_AUTH0_AUDIENCE', message: /at most 20/ })
  t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_AUDIENCE: many.split(',').slice(0, 20).join(',') }).audiences.length, 20)
  t.match(configError({ TOOLBRIDGE_JWT_TOKEN: 'static', TOOLBRIDGE_SIDECAR_SECRET: SIDECAR_SECRET, TOOLBRIDGE_AUTH0_AUDIENCE: 'https://a.example https://b.example' }), {
    variable: 'TOOLBRIDGE_AUTH0_AUDIENCE', message: /static TOOLBRIDGE_JWT_TOKEN is one token for one audience/
  })
})

t.test('audience parameter, scope and organization', async (t) => {
  t.match(loadConfig(base), { audienceParam: 'audience', scope: undefined, organization: undefined })
  for (const param of ['audience', 'resource', 'both']) t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_AUDIENCE_PARAM: param }).audienceParam, param)
  t.match(configError({ ...base, TOOLBRIDGE_AUTH0_AUDIENCE_PARAM: 'aud' }), { variable: 'TOOLBRIDGE_AUTH0_AUDIENCE_PARAM', message: /one of audience, resource, both/ })
  t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_SCOPE: '  read:things \n write:things ' }).scope, 'read:things write:things', 'whitespace normalized')
  for (const bad of ['read "x"', 'a\\b', 'café']) {
    t.match(configError({ ...base, TOOLBRIDGE_AUTH0_SCOPE: bad }), { variable: 'TOOLBRIDGE_AUTH0_SCOPE' }, bad)
  }
  t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_ORGANIZATION: 'org_W7yDk2JcPgAfu5xB' }).organization, 'org_W7yDk2JcPgAfu5xB')
  t.match(configError({ ...base, TOOLBRIDGE_AUTH0_ORGANIZATION: 'my org' }), { variable: 'TOOLBRIDGE_AUTH0_ORGANIZATION', message: /without spaces/ })
})

t.test('token store: a redis:// or rediss:// URL, from the environment or a file, never echoed; a prefix', async (t) => {
  t.equal(loadConfig(base).tokenStore, undefined, 'optional: unset, nothing is shared')
  const store = loadConfig({ ...base, TOOLBRIDGE_TOKEN_STORE_URL: 'rediss://default:s3cret-pass@fly-tokens.upstash.io:6379' }).tokenStore
  t.equal(store?.url.href, 'rediss://default:s3cret-pass@fly-tokens.upstash.io:6379')
  t.equal(store?.prefix, 'tokensidecar:v1:')
  t.equal(loadConfig({ ...base, TOOLBRIDGE_TOKEN_STORE_URL_FILE: file('store-url', 'redis://127.0.0.1:6379\n') }).tokenStore?.url.host, '127.0.0.1:6379')
  t.equal(loadConfig({ ...base, TOOLBRIDGE_TOKEN_STORE_URL: 'redis://h:1', TOOLBRIDGE_TOKEN_STORE_PREFIX: 'team-a:tokens:' }).tokenStore?.prefix, 'team-a:tokens:')
  for (const bad of ['https://user:s3cret-pass@example.com', 'redis://:s3cret-pass@', 'not a url s3cret-pass']) {
    const err = configError({ ...base, TOOLBRIDGE_TOKEN_STORE_URL: bad })
    t.match(err, { variable: 'TOOLBRIDGE_TOKEN_STORE_URL', message: /expected a redis:\/\/ or rediss:\/\/ \(TLS\) URL/ }, bad)
    t.notMatch(err.message, 's3cret-pass', 'the URL (and its password) is never echoed')
  }
  t.match(configError({ ...base, TOOLBRIDGE_TOKEN_STORE_URL_FILE: file('bad-store-url', 'http://x\n') }), { variable: 'TOOLBRIDGE_TOKEN_STORE_URL_FILE' })
  t.match(configError({ ...base, TOOLBRIDGE_TOKEN_STORE_URL: 'redis://h:1', TOOLBRIDGE_TOKEN_STORE_PREFIX: 'has space' }), { variable: 'TOOLBRIDGE_TOKEN_STORE_PREFIX' })
})
