import t, { type Test } from 'tap'
import { createRemoteJWKSet, jwtVerify } from 'jose'
import { loadConfig, type Env } from '../../src/config/load-config.js'
import { createSidecar } from '../../src/sidecar.js'
import { until } from '../fixtures/fake-clock.js'
import { startOidcProvider, type OidcProviderStandIn } from '../fixtures/oidc-provider.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'

// Against panva's oidc-provider: a standard, certified server that checks
// the content type, the client authentication and the resource indicator.
const SECRET = 'oidc-sidecar-secret-0123456789abcdefghij'
const auth = { authorization: `Bearer ${SECRET}` }
registerSecret(SECRET, 'left-over-client-secret')

let op: OidcProviderStandIn
t.before(async () => { op = await startOidcProvider() })
t.teardown(() => op.close())

async function sidecar (t: Test, env: Env) {
  const captured = captureLogger()
  const { app, tokens } = createSidecar(loadConfig({
    TOOLBRIDGE_SIDECAR_SECRET: SECRET,
    TOOLBRIDGE_AUTH0_TOKEN_URL: op.tokenUrl,
    TOOLBRIDGE_AUTH0_AUDIENCE: op.resource,
    TOOLBRIDGE_AUTH0_AUDIENCE_PARAM: 'resource',
    TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: '5',
    ...env
  }), captured.logger)
  t.teardown(() => app.close())
  tokens.start()
  await until(() => captured.lines().some((l) => l.event === 'token_refreshed' || l.event === 'token_refresh_failed'))
  return { app, lines: captured.lines }
}

async function servedJwt (t: Test, app: Awaited<ReturnType<typeof sidecar>>['app']) {
  const res = await app.inject({ url: '/token', headers: auth })
  t.equal(res.statusCode, 200)
  const token = res.json().access_token as string
  registerSecret(token)
  const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(op.jwksUrl)), { issuer: op.issuer, audience: op.resource })
  return { payload, protectedHeader, expiresIn: res.json().expires_in as number }
}

t.test('oidc-provider refuses a JSON body, which is why the sidecar sends a form', async (t) => {
  const res = await fetch(op.tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: op.clients.post.id, client_secret: op.clients.post.secret, resource: op.resource })
  })
  t.equal(res.status, 400)
  t.match(await res.json(), { error: 'invalid_request', error_description: /only application\/x-www-form-urlencoded content-type bodies are supported/ })
})

t.test('client_secret_post: a JWT for the configured audience, verified against the provider\'s JWKS', async (t) => {
  const { app } = await sidecar(t, { TOOLBRIDGE_AUTH0_CLIENT_ID: op.clients.post.id, TOOLBRIDGE_AUTH0_CLIENT_SECRET: op.clients.post.secret })
  const { payload, protectedHeader, expiresIn } = await servedJwt(t, app)
  t.equal(protectedHeader.alg, 'RS256')
  t.match(payload, { aud: op.resource, client_id: op.clients.post.id })
  t.equal(payload.scope, undefined, 'no scope asked, none granted')
  t.ok(expiresIn > 3500 && expiresIn <= 3600, `expires_in ${expiresIn}`)
  t.match((await app.inject({ url: '/healthz' })).json(), { status: 'ok', audience: op.resource, unavailable_audiences: [] })
})

t.test('client_secret_basic, with a secret that needs form-encoding (: + / space %)', async (t) => {
  const { app } = await sidecar(t, { TOOLBRIDGE_AUTH0_CLIENT_ID: op.clients.basic.id, TOOLBRIDGE_AUTH0_CLIENT_SECRET: op.clients.basic.secret, TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'client_secret_basic', TOOLBRIDGE_AUTH0_SCOPE: 'read:things' })
  const { payload } = await servedJwt(t, app)
  t.match(payload, { aud: op.resource, client_id: op.clients.basic.id, scope: 'read:things' }, 'TOOLBRIDGE_AUTH0_SCOPE asked for it')
})

for (const [name, assertionAudience] of [['the issuer', () => op.issuer], ['the token endpoint URL', () => op.tokenUrl]] as const) {
  t.test(`private_key_jwt (ES256, kid) with ${name} as the assertion audience; no shared secret`, async (t) => {
    const { app, lines } = await sidecar(t, {
      TOOLBRIDGE_AUTH0_CLIENT_ID: op.clients.jwt.id,
      TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'private_key_jwt',
      TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: op.clients.jwt.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
      TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KID: op.clients.jwt.kid,
      TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE: assertionAudience(),
      TOOLBRIDGE_AUTH0_AUDIENCE_PARAM: 'both',
      // Left over from before the switch: not sent (the provider would refuse two client authentications).
      ...(name === 'the issuer' ? { TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'left-over-client-secret' } : {})
    })
    const { payload } = await servedJwt(t, app)
    t.match(payload, { aud: op.resource, client_id: op.clients.jwt.id })
    t.match(lines().find((l) => l.event === 'token_manager_initialized'), { client_auth: 'private_key_jwt' })
    t.equal(lines().some((l) => l.event === 'client_secret_ignored' && l.level === 'warn'), name === 'the issuer', 'a left-over secret is named in a warning')
  })
}

t.test('the provider\'s invalid_client and invalid_target surface as configuration errors on /healthz', async (t) => {
  const cases: Array<[string, Env, string]> = [
    ['a wrong secret', { TOOLBRIDGE_AUTH0_CLIENT_ID: op.clients.post.id, TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'not-the-secret' }, 'invalid_client'],
    ['a secret for a client registered for private_key_jwt', { TOOLBRIDGE_AUTH0_CLIENT_ID: op.clients.jwt.id, TOOLBRIDGE_AUTH0_CLIENT_SECRET: op.clients.post.secret }, 'invalid_client'],
    ['an unknown resource', { TOOLBRIDGE_AUTH0_CLIENT_ID: op.clients.post.id, TOOLBRIDGE_AUTH0_CLIENT_SECRET: op.clients.post.secret, TOOLBRIDGE_AUTH0_AUDIENCE: 'https://not-registered.example' }, 'invalid_target']
  ]
  for (const [name, env, error] of cases) {
    const { app, lines } = await sidecar(t, env)
    const health = await app.inject({ url: '/healthz' })
    t.equal(health.statusCode, 503, name)
    t.match(health.json(), { status: 'unavailable', last_refresh: { result: 'failure', error, error_kind: 'config_error' } }, name)
    t.match(lines().find((l) => l.event === 'token_refresh_failed'), { level: 'error', error_kind: 'config_error', error, msg: /configuration error/ }, name)
  }
})
