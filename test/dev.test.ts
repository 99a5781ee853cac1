import t from 'tap'
import { request } from 'undici'
import { startDevIssuer } from '../src/dev/dev-issuer.js'
import { curlLine, DevModeError, setUpDevMode } from '../src/dev/dev-mode.js'
import { prettyDestination } from '../src/logger.js'
import { registerSecret } from './fixtures/suite-log.js'

const AUDIENCE = 'https://toolbridgeapi.erauner.dev'

const FORM = 'application/x-www-form-urlencoded'

async function post (url: string, body: string, contentType = FORM, headers: Record<string, string> = {}) {
  const res = await request(url, { method: 'POST', body, headers: { 'content-type': contentType, ...headers } })
  return { status: res.statusCode, json: await res.body.json() as Record<string, unknown> }
}

const form = (fields: Record<string, string>): string => new URLSearchParams(fields).toString()

t.test('the embedded issuer answers like Auth0, as strictly as a standard token endpoint', async (t) => {
  const issuer = await startDevIssuer({ clientId: 'dev', clientSecret: 'dev secret+/=', audiences: [AUDIENCE, 'https://second.example'], lifetimeSeconds: 120 })
  t.teardown(() => issuer.close())
  const grant = { grant_type: 'client_credentials', client_id: 'dev', client_secret: 'dev secret+/=', audience: AUDIENCE }

  const posted = await post(issuer.tokenUrl, form(grant))
  t.match(posted, { status: 200, json: { token_type: 'Bearer', expires_in: 120, access_token: /^ey[\w-]+\.ey[\w-]+\.[\w-]+$/ } })
  registerSecret(posted.json.access_token as string)
  const { client_id: _id, client_secret: _secret, ...bare } = grant
  const basic = `Basic ${Buffer.from(`dev:${encodeURIComponent('dev secret+/=')}`).toString('base64')}`
  const viaBasic = await post(issuer.tokenUrl, form({ ...bare, audience: 'https://second.example' }), FORM, { authorization: basic })
  t.equal(viaBasic.status, 200, 'client_secret_basic, for a second audience')
  registerSecret(viaBasic.json.access_token as string)
  const claims = JSON.parse(Buffer.from((viaBasic.json.access_token as string).split('.')[1]!, 'base64url').toString()) as { aud: string }
  t.equal(claims.aud, 'https://second.example')
  const viaResource = await post(issuer.tokenUrl, form({ grant_type: 'client_credentials', resource: AUDIENCE }), FORM, { authorization: basic })
  t.equal(viaResource.status, 200, 'RFC 8707 resource')
  registerSecret(viaResource.json.access_token as string)
  t.equal(issuer.issued(), 3)

  t.match(await post(issuer.tokenUrl, JSON.stringify(grant), 'application/json'), { status: 400, json: { error: 'invalid_request', error_description: /only application\/x-www-form-urlencoded/ } }, 'no JSON bodies')
  t.match(await post(issuer.tokenUrl, form(grant), FORM, { authorization: basic }), { status: 401 }, 'not two client authentications at once')
  t.match(await post(issuer.tokenUrl, form(bare), FORM, { authorization: 'Basic !!!' }), { status: 401 })
  t.match(await post(issuer.tokenUrl, form(bare), FORM, { authorization: `Basic ${Buffer.from('dev:%E0%A4%A').toString('base64')}` }), { status: 401 }, 'bad percent-encoding')
  t.match(await post(issuer.tokenUrl, form(bare), FORM, { authorization: 'Bearer x' }), { status: 401 })
  t.match(await post(issuer.tokenUrl, form(bare)), { status: 401 }, 'no client authentication')
  t.match(await post(issuer.tokenUrl, form({ ...grant, client_secret: 'wrong' })), { status: 401, json: { error: 'access_denied' } })
  t.match(await post(issuer.tokenUrl, form({ ...grant, audience: 'https://other' })), { status: 403, json: { error: 'access_denied' } })
  t.match(await post(issuer.tokenUrl, form({ ...grant, grant_type: 'password' })), { status: 400, json: { error: 'invalid_request' } })
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

t.test('dev mode in a terminal: pino-pretty where it is installed, JSON lines (undefined) where it cannot load', async (t) => {
  t.equal(await prettyDestination('pino-pretty-not-installed'), undefined)
  const pretty = await prettyDestination()
  t.type(pretty?.write, 'function', 'pino-pretty, a devDependency here')
})
