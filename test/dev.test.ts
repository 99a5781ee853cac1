import t from 'tap'
import { request } from 'undici'
import { startDevIssuer } from '../src/dev/dev-issuer.js'
import { curlLine, DevModeError, setUpDevMode } from '../src/dev/dev-mode.js'
import { registerSecret } from './fixtures/suite-log.js'

const AUDIENCE = 'https://toolbridgeapi.erauner.dev'

async function post (url: string, body: string, contentType = 'application/json') {
  const res = await request(url, { method: 'POST', body, headers: { 'content-type': contentType } })
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
}

t.test('the embedded issuer answers like Auth0', async (t) => {
  const issuer = await startDevIssuer({ clientId: 'dev', clientSecret: 'dev-secret', audience: AUDIENCE, lifetimeSeconds: 120 })
  t.teardown(() => issuer.close())
  const grant = { grant_type: 'client_credentials', client_id: 'dev', client_secret: 'dev-secret', audience: AUDIENCE }

  const json = await post(issuer.tokenUrl, JSON.stringify(grant))
  t.match(json, { status: 200, json: { token_type: 'Bearer', expires_in: 120, access_token: /^ey[\w-]+\.ey[\w-]+\.[\w-]+$/ } })
  registerSecret(json.json.access_token as string)
  const form = await post(issuer.tokenUrl, new URLSearchParams(grant).toString(), 'application/x-www-form-urlencoded')
  t.equal(form.status, 200, 'form encoding too')
  registerSecret(form.json.access_token as string)
  t.equal(issuer.issued(), 2)

  t.match(await post(issuer.tokenUrl, JSON.stringify({ ...grant, client_secret: 'wrong' })), { status: 401, json: { error: 'access_denied' } })
  t.match(await post(issuer.tokenUrl, JSON.stringify({ ...grant, audience: 'https://other' })), { status: 403, json: { error: 'access_denied' } })
  t.match(await post(issuer.tokenUrl, JSON.stringify({ ...grant, grant_type: 'password' })), { status: 400, json: { error: 'invalid_request' } })
  t.match(await post(issuer.tokenUrl, 'not json'), { status: 400 })
  t.match(await post(issuer.tokenUrl, 'null'), { status: 400 })
  t.match(await post(issuer.tokenUrl, 'x'.repeat(20_000)), { status: 413 })
  const missing = await request(issuer.tokenUrl.replace('/oauth/token', '/nope'))
  t.equal(missing.statusCode, 404)
  await missing.body.dump()
  const jwks = await request(issuer.tokenUrl.replace('/oauth/token', '/.well-known/jwks.json'))
  t.match(await jwks.body.json(), { keys: [{ kty: 'RSA', alg: 'RS256', use: 'sig', kid: String }] })
})

t.test('dev mode points the sidecar at the issuer and generates a secret', async (t) => {
  const dev = await setUpDevMode({ TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: '/run/secrets/real', TOOLBRIDGE_JWT_TOKEN: 'legacy' })
  t.teardown(() => dev.issuer.close())
  t.match(dev.env, {
    TOOLBRIDGE_AUTH0_CLIENT_ID: 'token-sidecar-dev',
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: String,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: undefined,
    TOOLBRIDGE_AUTH0_TOKEN_URL: dev.issuer.tokenUrl,
    TOOLBRIDGE_JWT_TOKEN: undefined,
    TOOLBRIDGE_SIDECAR_HOST: '127.0.0.1',
    TOOLBRIDGE_SIDECAR_SECRET: /^[0-9a-f]{64}$/
  })
  t.equal(dev.secretForCurl, dev.env.TOOLBRIDGE_SIDECAR_SECRET)
})

t.test('dev mode keeps an operator\'s secret out of the curl line', async (t) => {
  const fromFile = await setUpDevMode({ TOOLBRIDGE_SIDECAR_SECRET_FILE: '/tmp/secret file', TOOLBRIDGE_SIDECAR_HOST: '::1' })
  t.teardown(() => fromFile.issuer.close())
  t.equal(fromFile.env.TOOLBRIDGE_SIDECAR_SECRET, undefined, 'read from the file by the config loader')
  t.equal(curlLine('::1', 8787, fromFile.secretForCurl), `curl -sS -H "Authorization: Bearer $(cat '/tmp/secret file')" http://[::1]:8787/token`)
})

t.test('dev mode refuses non-loopback hosts before starting anything', async (t) => {
  const err = await setUpDevMode({ TOOLBRIDGE_SIDECAR_HOST: '0.0.0.0' }).catch((e: unknown) => e)
  t.type(err, DevModeError)
  t.match(err, { message: /refuses TOOLBRIDGE_SIDECAR_HOST=0.0.0.0/ })
})

t.test('curl lines', async (t) => {
  t.equal(curlLine('127.0.0.1', 1234, 'abc'), "curl -sS -H 'Authorization: Bearer abc' http://127.0.0.1:1234/token")
  t.equal(curlLine('127.0.0.1', 1234, '"$TOOLBRIDGE_SIDECAR_SECRET"'), 'curl -sS -H "Authorization: Bearer $TOOLBRIDGE_SIDECAR_SECRET" http://127.0.0.1:1234/token')
})
