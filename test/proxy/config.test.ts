import t from 'tap'
import { ConfigError, loadConfig, type Env } from '../../src/config/load-config.js'
import { registerSecret } from '../fixtures/suite-log.js'

const base: Env = {
  TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid',
  TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'client-secret-value-123',
  TOOLBRIDGE_SIDECAR_SECRET: 'proxy-config-sidecar-secret-0123456789'
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

t.test('off by default', async (t) => {
  t.equal(loadConfig(base).proxy, undefined)
  t.equal(loadConfig({ ...base, TOOLBRIDGE_PROXY_PORT: '9000', TOOLBRIDGE_PROXY_AUDIENCE: 'https://other' }).proxy, undefined, 'only the target turns it on')
})

t.test('the target turns it on, with defaults for the rest', async (t) => {
  const config = loadConfig({ ...base, TOOLBRIDGE_PROXY_TARGET: 'https://api.example.com' })
  t.same(config.proxy, {
    target: new URL('https://api.example.com'),
    port: 8788,
    audience: 'https://toolbridgeapi.erauner.dev',
    maxBodyBytes: 10_485_760,
    connectTimeoutMs: 10_000,
    headersTimeoutMs: 300_000,
    idleTimeoutMs: 300_000
  })
  t.ok(Object.isFrozen(config.proxy))
})

t.test('every proxy setting is read', async (t) => {
  const config = loadConfig({
    ...base,
    TOOLBRIDGE_AUTH0_AUDIENCE: 'https://a.example, https://b.example',
    TOOLBRIDGE_PROXY_TARGET: 'http://127.0.0.1:9000/',
    TOOLBRIDGE_PROXY_PORT: '9001',
    TOOLBRIDGE_PROXY_AUDIENCE: 'https://b.example',
    TOOLBRIDGE_PROXY_MAX_BODY_BYTES: '1000',
    TOOLBRIDGE_PROXY_CONNECT_TIMEOUT_SECONDS: '1.5',
    TOOLBRIDGE_PROXY_HEADERS_TIMEOUT_SECONDS: '30',
    TOOLBRIDGE_PROXY_IDLE_TIMEOUT_SECONDS: '60'
  })
  t.same(config.proxy, { target: new URL('http://127.0.0.1:9000'), port: 9001, audience: 'https://b.example', maxBodyBytes: 1000, connectTimeoutMs: 1500, headersTimeoutMs: 30_000, idleTimeoutMs: 60_000 })
  t.equal(loadConfig({ ...base, TOOLBRIDGE_PROXY_TARGET: 'https://api.example.com:8443' }).proxy?.target.origin, 'https://api.example.com:8443')
  t.equal(loadConfig({ ...base, TOOLBRIDGE_PROXY_TARGET: 'http://[::1]:9000' }).proxy?.target.origin, 'http://[::1]:9000')
  t.equal(loadConfig({ ...base, TOOLBRIDGE_PROXY_TARGET: 'http://localhost:9000' }).proxy?.target.origin, 'http://localhost:9000')
})

t.test('a target must be an origin: https, or http to loopback; no path, query, fragment or credentials', async (t) => {
  for (const target of ['http://api.example.com', 'ftp://127.0.0.1', 'https://api.example.com/v1', 'https://api.example.com/?x=1', 'https://api.example.com/#x', 'not a url', '/relative']) {
    const err = configError({ ...base, TOOLBRIDGE_PROXY_TARGET: target })
    t.equal(err.variable, 'TOOLBRIDGE_PROXY_TARGET', target)
    t.match(err.message, /^TOOLBRIDGE_PROXY_TARGET: expected the API origin to proxy to/)
    t.match(err.message, JSON.stringify(target), 'a value without credentials is shown')
  }
  registerSecret('hunter2-proxy-password')
  for (const target of ['https://user:hunter2-proxy-password@api.example.com', 'https://hunter2-proxy-password@api.example.com', 'https://user:hunter2-proxy-password/x@api.example.com']) {
    const err = configError({ ...base, TOOLBRIDGE_PROXY_TARGET: target })
    t.equal(err.variable, 'TOOLBRIDGE_PROXY_TARGET')
    t.notMatch(err.message, 'hunter2', 'user-info is never echoed')
  }
})

t.test('the audience must be a configured one; the port another than the token port', async (t) => {
  const audience = configError({ ...base, TOOLBRIDGE_PROXY_TARGET: 'https://api.example.com', TOOLBRIDGE_PROXY_AUDIENCE: 'https://elsewhere' })
  t.equal(audience.variable, 'TOOLBRIDGE_PROXY_AUDIENCE')
  t.match(audience.message, 'one of the audiences in TOOLBRIDGE_AUTH0_AUDIENCE')
  const port = configError({ ...base, TOOLBRIDGE_PROXY_TARGET: 'https://api.example.com', TOOLBRIDGE_SIDECAR_PORT: '9000', TOOLBRIDGE_PROXY_PORT: '9000' })
  t.equal(port.variable, 'TOOLBRIDGE_PROXY_PORT')
  t.equal(loadConfig({ ...base, TOOLBRIDGE_PROXY_TARGET: 'https://api.example.com', TOOLBRIDGE_SIDECAR_PORT: '0', TOOLBRIDGE_PROXY_PORT: '0' }).proxy?.port, 0, 'two ephemeral ports never clash')
})

t.test('limits are bounded', async (t) => {
  for (const [variable, value] of [['TOOLBRIDGE_PROXY_PORT', '70000'], ['TOOLBRIDGE_PROXY_MAX_BODY_BYTES', '-1'], ['TOOLBRIDGE_PROXY_CONNECT_TIMEOUT_SECONDS', '0'], ['TOOLBRIDGE_PROXY_HEADERS_TIMEOUT_SECONDS', '4000'], ['TOOLBRIDGE_PROXY_IDLE_TIMEOUT_SECONDS', 'soon']] as const) {
    t.equal(configError({ ...base, TOOLBRIDGE_PROXY_TARGET: 'https://api.example.com', [variable]: value }).variable, variable)
  }
})
