import { generateKeyPairSync, type KeyObject } from 'node:crypto'
import t, { type Test } from 'tap'
import { decodeProtectedHeader, decodeJwt } from 'jose'
import { parseAssertionKey } from '../../src/config/assertion-key.js'
import { TokenRequestError } from '../../src/engine/errors.js'
import type { Dispatcher } from 'undici'
import { Auth0Transport, type Auth0TransportOptions } from '../../src/upstream/auth0-transport.js'
import {
  ASSERTION_LIFETIME_SECONDS,
  JWT_BEARER_ASSERTION,
  privateKeyJwt,
  secretBasic,
  secretPost,
  type ClientAuth
} from '../../src/upstream/client-auth.js'
import { FakeAuth0, type FakeAuth0Options } from '../fixtures/fake-auth0.js'

const never = new AbortController().signal
const ASSERTION_AUDIENCE = 'https://tenant.example.auth0.com/'

async function setup (t: Test, auth: (auth0: FakeAuth0) => ClientAuth, opts: FakeAuth0Options = {}, transportOpts: Partial<Auth0TransportOptions> = {}) {
  const auth0 = await FakeAuth0.start({ assertionAudience: ASSERTION_AUDIENCE, ...opts })
  const transport = new Auth0Transport({ tokenUrl: new URL(auth0.tokenUrl), clientAuth: auth(auth0), audience: auth0.audience, timeoutMs: 2000, ...transportOpts })
  t.teardown(async () => {
    await transport.close()
    await auth0.close()
  })
  return { auth0, transport }
}

function keyPair (type: 'rsa' | 'ec'): { privateKey: KeyObject, publicKey: KeyObject, pem: string } {
  const { privateKey, publicKey } = type === 'rsa'
    ? generateKeyPairSync('rsa', { modulusLength: 2048 })
    : generateKeyPairSync('ec', { namedCurve: 'P-256' })
  return { privateKey, publicKey, pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string }
}

t.test('client_secret_post: id and secret in the form, no Authorization header', async (t) => {
  const { auth0, transport } = await setup(t, (a) => secretPost(a.clientId, a.clientSecret))
  t.ok(await transport.fetchToken(never))
  const [request] = auth0.requests
  t.same(request?.body, { grant_type: 'client_credentials', client_id: auth0.clientId, client_secret: auth0.clientSecret, audience: auth0.audience })
  t.equal(request?.headers.authorization, undefined)
})

t.test('client_secret_basic: RFC 6749 §2.3.1, each part form-encoded before base64, neither in the body', async (t) => {
  const clientId = 'id with space:colon+plus'
  const clientSecret = 'sëcret/with+plus %20 & = :colon'
  const { auth0, transport } = await setup(t, (a) => secretBasic(a.clientId, a.clientSecret), { clientId, clientSecret })
  t.ok(await transport.fetchToken(never), 'the stand-in decodes it the way a standard server does')
  const [request] = auth0.requests
  const form = (value: string): string => new URLSearchParams({ v: value }).toString().slice(2)
  t.equal(request?.headers.authorization, `Basic ${Buffer.from(`${form(clientId)}:${form(clientSecret)}`).toString('base64')}`)
  t.equal(form(clientId), 'id+with+space%3Acolon%2Bplus', 'a colon in the id cannot end it early')
  t.same(request?.body, { grant_type: 'client_credentials', audience: auth0.audience })
  t.notMatch(request?.rawBody, /client_(id|secret)/)

  auth0.clientSecret = 'changed'
  t.match(await transport.fetchToken(never).catch((e: unknown) => e), { kind: 'config_error', status: 401 }, 'a wrong secret is a configuration error')
  t.equal(secretBasic(clientId, clientSecret).formEncoded, true, 'the encoding changed them: a hint may say so')
  t.equal(secretBasic('client-id', 'Auth0SecretsAreLettersDigits-_').formEncoded, false, 'Auth0\'s secrets pass unchanged')
})

const ALGORITHMS = [
  ['rsa', 'RS256', undefined],
  ['rsa', 'RS256', 'RS256'],
  ['rsa', 'RS384', 'RS384'],
  ['rsa', 'PS256', 'PS256'],
  ['ec', 'ES256', undefined]
] as const

for (const [type, alg, configured] of ALGORITHMS) {
  t.test(`private_key_jwt with an ${type.toUpperCase()} key, ${alg}${configured === undefined ? ' by default' : ' as set'}: a fresh signed assertion on every request, verified by jose, no secret anywhere`, async (t) => {
    const { privateKey, publicKey, pem } = keyPair(type)
    const key = parseAssertionKey(pem, configured)
    t.equal(key.alg, alg)
    const { auth0, transport } = await setup(t, (a) => privateKeyJwt({ clientId: a.clientId, key, kid: type === 'rsa' ? 'key-2026' : undefined, audience: ASSERTION_AUDIENCE }), { assertionKey: publicKey, assertionAlg: alg })
    for (let i = 0; i < 3; i++) t.ok(await transport.fetchToken(never), `request ${i + 1}: the stand-in verified the signature`)
    t.equal(auth0.assertions.length, 3)
    const jtis = new Set(auth0.assertions.map((a) => a.claims.jti))
    t.equal(jtis.size, 3, 'a unique jti on every request')
    for (const { header, claims } of auth0.assertions) {
      t.same(header, { alg, typ: 'JWT', ...(type === 'rsa' ? { kid: 'key-2026' } : {}) })
      t.match(claims, { iss: auth0.clientId, sub: auth0.clientId, aud: ASSERTION_AUDIENCE, jti: /^[0-9a-f-]{36}$/ })
      t.equal(claims.exp! - claims.iat!, ASSERTION_LIFETIME_SECONDS)
      t.ok(ASSERTION_LIFETIME_SECONDS <= 60)
      t.ok(Math.abs(claims.iat! - Date.now() / 1000) < 5, 'iat is now')
    }
    const [request] = auth0.requests
    t.same(Object.keys(request!.body!), ['grant_type', 'client_id', 'client_assertion_type', 'client_assertion', 'audience'])
    t.equal(request?.body?.client_assertion_type, JWT_BEARER_ASSERTION)
    t.equal(request?.headers.authorization, undefined)
    t.notMatch(request?.rawBody, /client_secret/)
    t.notMatch(request?.rawBody, pem.split('\n')[1]!, 'the key itself never travels')

    // A credential registered with another algorithm (Auth0 checks it), or another key: invalid_client, a configuration error.
    auth0.assertionAlg = type === 'rsa' ? (alg === 'PS256' ? 'RS256' : 'PS256') : 'ES384'
    t.match(await transport.fetchToken(never).catch((e: unknown) => e), { kind: 'config_error', status: 401, auth0Error: 'invalid_client', auth0Description: /alg/ })
    auth0.assertionAlg = alg
    auth0.assertionKey = keyPair(type).publicKey
    t.match(await transport.fetchToken(never).catch((e: unknown) => e), { kind: 'config_error', status: 401, auth0Error: 'invalid_client' })
    t.ok(privateKey)
  })
}

t.test('private_key_jwt: iat and exp follow the injected wall clock', async (t) => {
  const { pem } = keyPair('ec')
  const auth = privateKeyJwt({ clientId: 'c', key: parseAssertionKey(pem), kid: undefined, audience: 'https://issuer.example/', now: () => Date.UTC(2030, 0, 1) })
  const proof = await auth.proof()
  const assertion = proof.fields.find(([name]) => name === 'client_assertion')![1]
  t.match(decodeJwt(assertion), { iat: Date.UTC(2030, 0, 1) / 1000, exp: Date.UTC(2030, 0, 1) / 1000 + 60, aud: 'https://issuer.example/' })
  t.equal(decodeProtectedHeader(assertion).kid, undefined)
})

t.test('audience as `audience`, `resource` (RFC 8707) or both; scope and organization when set', async (t) => {
  for (const [param, fields] of [
    ['audience', ['audience']],
    ['resource', ['resource']],
    ['both', ['audience', 'resource']]
  ] as const) {
    const { auth0, transport } = await setup(t, (a) => secretPost(a.clientId, a.clientSecret), {}, { audienceParam: param, scope: 'read:things write:things', organization: 'org_abc123' })
    t.ok(await transport.fetchToken(never), param)
    const body = auth0.requests[0]!.body!
    for (const name of fields) t.equal(body[name], auth0.audience, `${param}: ${name}`)
    t.equal(body.audience === undefined, !fields.includes('audience' as never))
    t.equal(body.resource === undefined, !fields.includes('resource' as never))
    t.equal(body.scope, 'read:things write:things')
    t.equal(body.organization, 'org_abc123')
    t.match(auth0.requests[0]!.rawBody, /scope=read%3Athings\+write%3Athings/, 'form-encoded')
  }
  const { auth0, transport } = await setup(t, (a) => secretPost(a.clientId, a.clientSecret))
  await transport.fetchToken(never)
  t.same(Object.keys(auth0.requests[0]!.body!), ['grant_type', 'client_id', 'client_secret', 'audience'], 'no scope or organization unless set')
})

t.test('a new client authentication applies from the next request on', async (t) => {
  const { auth0, transport } = await setup(t, (a) => secretPost(a.clientId, 'old-secret-value'))
  t.match(await transport.fetchToken(never).catch((e: unknown) => e), { status: 401 })
  transport.setClientAuth(secretBasic(auth0.clientId, auth0.clientSecret))
  t.ok(await transport.fetchToken(never))
  t.match(auth0.requests[1]?.headers.authorization, /^Basic /)
})

t.test('a client authentication that cannot produce its proof is a configuration error, and nothing is sent', async (t) => {
  const { auth0, transport } = await setup(t, () => ({ method: 'private_key_jwt', proof: () => Promise.reject(new Error('key is unusable')) }))
  const err = await transport.fetchToken(never).catch((e: unknown) => e)
  t.type(err, TokenRequestError)
  t.match(err, { kind: 'config_error', code: 'CLIENT_ASSERTION_FAILED', message: /cannot sign the client assertion: key is unusable/ })
  t.equal(auth0.requests.length, 0)
})

t.test('a network failure is described by its message and its code, whichever it has', async (t) => {
  const failing = (reason: unknown): Dispatcher => ({ request: () => Promise.reject(reason) }) as unknown as Dispatcher
  const transport = (reason: unknown): Auth0Transport => new Auth0Transport({ tokenUrl: new URL('https://op.example/token'), clientAuth: secretPost('c', 's'), audience: 'a', timeoutMs: 1000, dispatcher: failing(reason) })
  const cases: Array<[unknown, RegExp, string]> = [
    [Object.assign(new Error('self-signed certificate'), { code: 'DEPTH_ZERO_SELF_SIGNED_CERT' }), /failed: self-signed certificate \(DEPTH_ZERO_SELF_SIGNED_CERT\); a private CA: set NODE_EXTRA_CA_CERTS to a PEM file with its certificate$/, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
    [Object.assign(new Error('certificate has expired'), { code: 'CERT_HAS_EXPIRED' }), /failed: certificate has expired \(CERT_HAS_EXPIRED\)$/, 'CERT_HAS_EXPIRED'],
    [Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' }), /failed: connect ECONNREFUSED 10\.0\.0\.1:443$/, 'ECONNREFUSED'],
    [{ code: 'EWEIRD' }, /failed: EWEIRD$/, 'EWEIRD'],
    [new Error('socket hang up'), /failed: socket hang up$/, 'NETWORK_ERROR'],
    ['a string', /failed: unknown error$/, 'NETWORK_ERROR']
  ]
  for (const [reason, message, code] of cases) {
    t.match(await transport(reason).fetchToken(never).catch((e: unknown) => e), { kind: 'network_error', code, message }, code)
  }
})

t.test('the stand-in is as strict as a standard server: JSON bodies and two client authentications are refused', async (t) => {
  const { auth0 } = await setup(t, (a) => secretPost(a.clientId, a.clientSecret))
  const post = async (body: string, headers: Record<string, string>) => {
    const res = await fetch(auth0.tokenUrl, { method: 'POST', body, headers })
    return { status: res.status, json: await res.json() as Record<string, unknown> }
  }
  const grant = { grant_type: 'client_credentials', client_id: auth0.clientId, client_secret: auth0.clientSecret, audience: auth0.audience }
  t.match(await post(JSON.stringify(grant), { 'content-type': 'application/json' }), { status: 400, json: { error: 'invalid_request', error_description: /only application\/x-www-form-urlencoded/ } })
  const basic = `Basic ${Buffer.from(`${auth0.clientId}:${auth0.clientSecret}`).toString('base64')}`
  t.match(await post(new URLSearchParams(grant).toString(), { 'content-type': 'application/x-www-form-urlencoded', authorization: basic }), { status: 400 })
})
