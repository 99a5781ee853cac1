import { execFileSync } from 'node:child_process'
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { ConfigError, loadConfig, type Env } from '../src/config/load-config.js'
import { isLoopbackHost } from '../src/config/loopback.js'

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
    mode: 'auto-refresh',
    credentials: { clientId: 'cid', clientSecret: CLIENT_SECRET },
    staticToken: undefined,
    staticTokenIgnored: false,
    domain: 'dev-zysv6k3xo7pkwmcb.us.auth0.com',
    audience: 'https://toolbridgeapi.erauner.dev',
    timeoutMs: 10_000,
    refreshBufferMs: 300_000,
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
    TOOLBRIDGE_SIDECAR_HOST: '::',
    TOOLBRIDGE_SIDECAR_PORT: '9000',
    LOG_LEVEL: 'debug'
  })
  t.match(config, { domain: 'tenant.eu.auth0.com', audience: 'https://api.example', timeoutMs: 2500, refreshBufferMs: 60_000, host: '::', port: 9000, logLevel: 'debug' })
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
  t.match(loadConfig({ ...base, TOOLBRIDGE_JWT_TOKEN: 'static' }), { mode: 'auto-refresh', staticToken: undefined, staticTokenIgnored: true })
  t.match(loadConfig({ TOOLBRIDGE_JWT_TOKEN: 'static', TOOLBRIDGE_SIDECAR_SECRET: SIDECAR_SECRET }), { mode: 'static', staticToken: 'static', credentials: undefined, staticTokenIgnored: false })
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
  t.equal(loadConfig({ ...base, TOOLBRIDGE_AUTH0_CLIENT_SECRET: undefined, TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: file('max', 'x'.repeat(64 * 1024)) }).credentials?.clientSecret.length, 64 * 1024, '64 KiB exactly is fine')
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
  t.match(loadConfig({ ...env, TOOLBRIDGE_JWT_TOKEN: `${b64({ alg: 'none' })}.${b64({ exp: 1_900_000_000 })}.sig` }), { mode: 'static' })
})

t.test('connection cap', async (t) => {
  t.equal(loadConfig(base).maxConnections, 1024)
  t.equal(loadConfig({ ...base, TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: '10' }).maxConnections, 10)
  for (const bad of ['0', '-1', '1.5', 'many']) {
    t.match(configError({ ...base, TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS: bad }), { variable: 'TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS', message: /from 1 to 1000000/ }, bad)
  }
})
