import { createServer } from 'node:net'
import t, { type Test } from 'tap'
import { TokenRequestError } from '../../src/engine/errors.js'
import { Auth0Transport, MAX_RESPONSE_BYTES } from '../../src/upstream/auth0-transport.js'
import { longest, quotaReset, retryAfter } from '../../src/upstream/retry-after.js'
import { secretBasic, secretPost, type ClientAuth } from '../../src/upstream/client-auth.js'
import type { RateLimitInfo } from '../../src/upstream/rate-limit.js'
import { VERSION } from '../../src/version.js'
import { FakeAuth0, globalLimit, type FakeAuth0Options } from '../fixtures/fake-auth0.js'
import { registerSecret } from '../fixtures/suite-log.js'
import { SecretScrubber } from '../../src/secret-scrubber.js'

async function setup (t: Test, timeoutMs = 2000, opts: { auth0?: FakeAuth0Options, scope?: string, organization?: string, clientAuth?: (auth0: FakeAuth0) => ClientAuth, onRateLimit?: (info: RateLimitInfo) => void } = {}) {
  const auth0 = await FakeAuth0.start(opts.auth0)
  const transport = new Auth0Transport({
    tokenUrl: new URL(auth0.tokenUrl),
    clientAuth: opts.clientAuth?.(auth0) ?? secretPost(auth0.clientId, auth0.clientSecret),
    audience: auth0.audience,
    timeoutMs,
    scope: opts.scope,
    organization: opts.organization,
    ...(opts.onRateLimit === undefined ? {} : { onRateLimit: opts.onRateLimit })
  })
  t.teardown(async () => {
    await transport.close()
    await auth0.close()
  })
  return { auth0, transport }
}

const never = new AbortController().signal

async function failure (promise: Promise<unknown>): Promise<TokenRequestError> {
  const err = await promise.then(() => undefined, (e: unknown) => e)
  if (!(err instanceof TokenRequestError)) throw new Error(`expected a TokenRequestError, got ${String(err)}`)
  return err
}

t.test('sends the client-credentials grant as a form (RFC 6749 §4.4.2), as Auth0 documents it', async (t) => {
  const { auth0, transport } = await setup(t)
  const token = await transport.fetchToken(never)
  t.equal(token.accessToken, auth0.issued[0])
  t.equal(token.expiresInSeconds, 86400)
  const [request] = auth0.requests
  t.equal(request?.method, 'POST')
  t.equal(request?.path, '/oauth/token')
  t.equal(request?.headers['content-type'], 'application/x-www-form-urlencoded')
  t.equal(request?.headers.accept, 'application/json')
  t.equal(request?.headers['user-agent'], `toolbridge-token-sidecar/${VERSION}`)
  t.equal(request?.headers.authorization, undefined)
  t.equal(request?.rawBody, new URLSearchParams({ grant_type: 'client_credentials', client_id: auth0.clientId, client_secret: auth0.clientSecret, audience: auth0.audience }).toString())
})

t.test('reuses the connection (keep-alive pool)', async (t) => {
  const { auth0, transport } = await setup(t)
  await transport.fetchToken(never)
  // Give the pool a moment to see the socket free again.
  await new Promise((resolve) => setTimeout(resolve, 20))
  await transport.fetchToken(never)
  t.equal(auth0.requests[0]?.remotePort, auth0.requests[1]?.remotePort)
})

t.test('accepts token_type in any case', async (t) => {
  const { auth0, transport } = await setup(t)
  auth0.enqueue({ kind: 'token', tokenType: 'bearer' })
  t.ok(await transport.fetchToken(never))
})

t.test('401 access_denied is a configuration error with Auth0 fields', async (t) => {
  const { auth0, transport } = await setup(t)
  auth0.clientSecret = 'rotated-elsewhere'
  const err = await failure(transport.fetchToken(never))
  t.match(err, { kind: 'config_error', status: 401, auth0Error: 'access_denied', auth0Description: 'Unauthorized', code: 'HTTP_401' })
  t.notMatch(err.message, auth0.clientSecret)
})

t.test('both 403 answers are configuration errors', async (t) => {
  const { auth0, transport } = await setup(t)
  auth0.enqueue(
    { kind: 'status', status: 403, body: { error: 'access_denied', error_description: 'Client is not authorized to access "x".' } },
    { kind: 'status', status: 403, body: { error: 'unauthorized_client', error_description: "Grant type 'client_credentials' not allowed for the client.", error_uri: 'https://auth0.com/docs' } },
    { kind: 'status', status: 401, body: { error: 'invalid_client', error_description: 'Client authentication failed' } },
    { kind: 'status', status: 400, body: { error: 'invalid_request', error_description: 'Missing required parameter: audience' } }
  )
  t.match(await failure(transport.fetchToken(never)), { kind: 'config_error', status: 403, auth0Error: 'access_denied' })
  t.match(await failure(transport.fetchToken(never)), { kind: 'config_error', status: 403, auth0Error: 'unauthorized_client' })
  t.match(await failure(transport.fetchToken(never)), { kind: 'config_error', status: 401, auth0Error: 'invalid_client' })
  t.match(await failure(transport.fetchToken(never)), { kind: 'config_error', status: 400, auth0Error: 'invalid_request' })
})

t.test('429 carries Retry-After, or falls back to x-ratelimit-reset', async (t) => {
  const { auth0, transport } = await setup(t)
  const reset = Math.floor(Date.now() / 1000) + 30
  auth0.enqueue(
    { kind: 'status', status: 429, body: { error: 'too_many_requests', error_description: 'Global limit has been reached' }, headers: { 'retry-after': '17', 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) } },
    { kind: 'status', status: 429, body: { error: 'too_many_requests' }, headers: { 'x-ratelimit-reset': String(reset) } }
  )
  t.match(await failure(transport.fetchToken(never)), { kind: 'http_error', status: 429, auth0Error: 'too_many_requests', retryAfterMs: 17_000 })
  const second = await failure(transport.fetchToken(never))
  t.ok(second.retryAfterMs! > 28_000 && second.retryAfterMs! <= 30_000, `${second.retryAfterMs} from x-ratelimit-reset`)
})

t.test('503 temporarily_unavailable and 500 HTML are transient', async (t) => {
  const { auth0, transport } = await setup(t)
  auth0.enqueue(
    { kind: 'status', status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'retry-after': '5' } },
    { kind: 'status', status: 500, body: '<html><body>Internal Server Error</body></html>', contentType: 'text/html' }
  )
  t.match(await failure(transport.fetchToken(never)), { kind: 'http_error', status: 503, auth0Error: 'temporarily_unavailable', retryAfterMs: 5000 })
  const html = await failure(transport.fetchToken(never))
  t.match(html, { kind: 'http_error', status: 500, auth0Error: undefined })
  t.notMatch(html.message, /html/i, 'the raw body is not repeated')
})

t.test('a 200 that is not a valid token answer is rejected', async (t) => {
  const { auth0, transport } = await setup(t)
  const cases: Array<[string, Parameters<FakeAuth0['enqueue']>[0]]> = [
    ['malformed JSON', { kind: 'status', status: 200, body: '{"access_token": "abc", ' }],
    ['HTML', { kind: 'status', status: 200, body: '<html>login</html>', contentType: 'text/html' }],
    ['JSON array', { kind: 'status', status: 200, body: '[]' }],
    ['empty access_token', { kind: 'token', accessToken: '' }],
    ['numeric access_token', { kind: 'token', accessToken: 42 }],
    ['DPoP token type', { kind: 'token', tokenType: 'DPoP' }],
    ['missing token_type', { kind: 'token', tokenType: null }],
    ['zero expires_in', { kind: 'token', expiresIn: 0 }],
    ['negative expires_in', { kind: 'token', expiresIn: -5 }],
    ['string expires_in', { kind: 'token', expiresIn: '3600' }],
    ['huge body', { kind: 'huge' }]
  ]
  for (const [name, behaviour] of cases) {
    auth0.enqueue(behaviour)
    t.match(await failure(transport.fetchToken(never)), { kind: 'invalid_response' }, name)
  }
  t.ok(MAX_RESPONSE_BYTES < 200 * 1024)
})

t.test('a hanging endpoint times out', async (t) => {
  const { auth0, transport } = await setup(t, 300)
  auth0.enqueue({ kind: 'hang' })
  const started = Date.now()
  const err = await failure(transport.fetchToken(never))
  t.match(err, { kind: 'network_error', code: 'TIMEOUT', message: /timed out after 0.3 s/ })
  t.ok(Date.now() - started < 2000)
})

t.test('a slow body times out too: the limit runs to the last byte', async (t) => {
  const auth0 = await FakeAuth0.start()
  const server = createServer((socket) => {
    socket.on('error', () => {})
    socket.write('HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{"access_token":')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const port = (server.address() as { port: number }).port
  const transport = new Auth0Transport({ tokenUrl: new URL(`http://127.0.0.1:${port}/oauth/token`), clientAuth: secretPost('x', 'y'), audience: 'z', timeoutMs: 300 })
  t.teardown(async () => {
    await transport.close()
    server.close()
    await auth0.close()
  })
  t.match(await failure(transport.fetchToken(never)), { kind: 'network_error', code: 'TIMEOUT' })
})

t.test('a refused connection is a network error', async (t) => {
  const auth0 = await FakeAuth0.start()
  const url = new URL(auth0.tokenUrl)
  await auth0.close()
  const transport = new Auth0Transport({ tokenUrl: url, clientAuth: secretPost('x', 'y'), audience: 'z', timeoutMs: 1000 })
  t.teardown(() => transport.close())
  t.match(await failure(transport.fetchToken(never)), { kind: 'network_error', code: 'ECONNREFUSED' })
})

t.test('aborting (shutdown) ends the request', async (t) => {
  const { auth0, transport } = await setup(t)
  auth0.enqueue({ kind: 'hang' })
  const controller = new AbortController()
  const pending = transport.fetchToken(controller.signal)
  setTimeout(() => controller.abort(), 50)
  t.match(await failure(pending), { kind: 'network_error' })
})

t.test('Retry-After parsing', async (t) => {
  const now = Date.UTC(2026, 0, 1)
  const ms = (headers: Record<string, string | string[]>): number | undefined => retryAfter(headers, now)?.ms
  t.equal(ms({ 'retry-after': '120' }), 120_000)
  t.equal(ms({ 'retry-after': new Date(now + 90_000).toUTCString() }), 90_000)
  t.equal(ms({ 'retry-after': new Date(now - 90_000).toUTCString() }), 0, 'a date in the past')
  t.equal(ms({ 'retry-after': 'soon' }), undefined)
  t.equal(ms({ 'retry-after': 'soon', 'x-ratelimit-reset': String(now / 1000 + 9) }), 9000)
  t.equal(ms({ 'x-ratelimit-reset': String(now / 1000 - 9) }), 0, 'a reset in the past')
  t.equal(ms({}), undefined)
  t.equal(ms({ 'retry-after': ['3', '9'] }), 3000, 'a repeated header: the first counts')
  t.equal(ms({ 'Retry-After': '7' }), 7000, 'any case')
})

t.test('Retry-After, x-ratelimit-reset and a quota reset are capped at an hour, naming what was sent', async (t) => {
  const now = Date.UTC(2026, 0, 1)
  t.same(retryAfter({ 'retry-after': '3600' }, now), { ms: 3_600_000 }, 'an hour exactly is believed')
  t.same(retryAfter({ 'retry-after': '3601' }, now), { ms: 3_600_000, capped: 'Retry-After: 3601' })
  t.same(retryAfter({ 'retry-after': '99999999999999999999' }, now), { ms: 3_600_000, capped: 'Retry-After: 99999999999999999999' })
  t.same(retryAfter({ 'retry-after': 'Fri, 31 Dec 9999 23:59:59 GMT' }, now), { ms: 3_600_000, capped: 'Retry-After: Fri, 31 Dec 9999 23:59:59 GMT' })
  t.same(retryAfter({ 'x-ratelimit-reset': '99999999999999999999' }, now), { ms: 3_600_000, capped: 'x-ratelimit-reset: 99999999999999999999' })
  t.equal(retryAfter({ 'retry-after': '9'.repeat(200) }, now)?.capped?.length, 64, 'the raw value is shortened')
  t.same(quotaReset({ scope: 'client', bucket: 'per_hour', limit: 10, remaining: 0, resetSeconds: 1800 }), { ms: 1_800_000 })
  t.same(quotaReset({ scope: 'organization', bucket: 'per_day', limit: 50, remaining: 0, resetSeconds: 43200 }), { ms: 3_600_000, capped: 'Auth0-Organization-Quota-Limit: b=per_day;t=43200' })
  t.same(quotaReset({ scope: 'client', bucket: 'per_day', limit: 50, remaining: 0, resetSeconds: 43200 }).capped, 'Auth0-Client-Quota-Limit: b=per_day;t=43200')
  t.same(longest({ ms: 5 }, { ms: 7 }), { ms: 7 })
  t.same(longest({ ms: 7 }, { ms: 5 }), { ms: 7 })
  t.same(longest(undefined, { ms: 5 }), { ms: 5 })
  t.same(longest({ ms: 5 }, undefined), { ms: 5 })
})

t.test('Auth0\'s 500 "Global limit has been reached" waits for x-ratelimit-reset, as any status carrying it', async (t) => {
  const { auth0, transport } = await setup(t)
  const reset = Math.floor(Date.now() / 1000) + 40
  auth0.enqueue(
    globalLimit(reset),
    { kind: 'status', status: 503, body: { error: 'temporarily_unavailable' }, headers: { 'x-ratelimit-limit': '100', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(reset) } }
  )
  for (const status of [500, 503]) {
    const err = await failure(transport.fetchToken(never))
    t.match(err, { kind: 'http_error', status, code: `HTTP_${status}` })
    t.ok(err.retryAfterMs! > 38_000 && err.retryAfterMs! <= 40_000, `${status}: ${err.retryAfterMs} ms from x-ratelimit-reset`)
  }
})

t.test('a 429 for a spent quota waits for that bucket to reset, not for the rate limit', async (t) => {
  const infos: RateLimitInfo[] = []
  const { auth0, transport } = await setup(t, 2000, {
    auth0: { quotas: { client: [{ bucket: 'per_hour', limit: 2, resetSeconds: 1800 }, { bucket: 'per_day', limit: 50, resetSeconds: 43200 }] } },
    onRateLimit: (info) => infos.push(info)
  })
  t.ok(await transport.fetchToken(never))
  t.ok(await transport.fetchToken(never))
  t.same(infos[1]?.quotas.map((q) => [q.bucket, q.remaining]), [['per_hour', 0], ['per_day', 48]], 'each bucket its own numbers')
  const err = await failure(transport.fetchToken(never))
  t.match(err, { kind: 'http_error', status: 429, auth0Error: 'too_many_requests', auth0Description: 'Client quota exceeded', retryAfterMs: 1_800_000 })
  t.equal(err.retryAfterCapped, undefined)
  t.equal(err.hint, 'the client quota\'s per_hour bucket (2 tokens) is used up; it resets in 1800 s')
  t.match(err.message, /answered 429 too_many_requests; the client quota's per_hour bucket/)
  t.equal(auth0.tokenRequests(), 3)

  // A Retry-After that asks for longer wins; a spent day is waited out for an hour, saying so.
  auth0.quotas!.client![0]!.resetSeconds = 60
  auth0.quotas!.retryAfterSeconds = 120
  t.match(await failure(transport.fetchToken(never)), { retryAfterMs: 120_000 })
  auth0.quotas!.client![1]!.used = 50
  t.match(await failure(transport.fetchToken(never)), { retryAfterMs: 3_600_000, retryAfterCapped: 'Auth0-Client-Quota-Limit: b=per_day;t=43200', hint: /per_day bucket \(50 tokens\)/ })
})

t.test('an organization\'s spent quota waits for the organization\'s bucket', async (t) => {
  const { auth0, transport } = await setup(t, 2000, {
    auth0: { quotas: { client: [{ bucket: 'per_hour', limit: 100, resetSeconds: 1800 }], organization: [{ bucket: 'per_hour', limit: 1, resetSeconds: 900, used: 1 }] } },
    organization: 'org_abc123'
  })
  t.match(await failure(transport.fetchToken(never)), { status: 429, auth0Description: 'Organization quota exceeded', retryAfterMs: 900_000, hint: /the organization quota's per_hour bucket/ })
  t.equal(auth0.requests[0]?.body?.organization, 'org_abc123')
})

t.test('401 and 403 without an OAuth error: a hint names what to check for that status', async (t) => {
  const { auth0, transport } = await setup(t, 2000, { scope: 'read:things write:things' })
  auth0.enqueue(
    { kind: 'status', status: 401, body: '' },
    { kind: 'status', status: 403, body: '<html>Forbidden</html>', contentType: 'text/html' },
    { kind: 'status', status: 403, body: { message: 'forbidden' } },
    { kind: 'status', status: 401, body: { error: 'invalid_client' } }
  )
  const empty = await failure(transport.fetchToken(never))
  t.match(empty, { kind: 'config_error', status: 401, code: 'HTTP_401', auth0Error: undefined, bodyExcerpt: undefined })
  t.equal(empty.hint, 'no OAuth error in the answer; check the client id and secret, and that the client is registered for client_secret_post (TOOLBRIDGE_AUTH0_CLIENT_AUTH)')
  t.match(empty.message, /^127\.0\.0\.1:\d+ answered 401; no OAuth error in the answer; check the client id and secret/)
  const html = await failure(transport.fetchToken(never))
  t.match(html, { kind: 'config_error', status: 403, bodyExcerpt: '<html>Forbidden</html>' })
  t.equal(html.hint, `no OAuth error in the answer; check that the client is granted the audience ${auth0.audience} and the scope "read:things write:things", and the client id and secret, and that the client is registered for client_secret_post (TOOLBRIDGE_AUTH0_CLIENT_AUTH)`)
  t.match(await failure(transport.fetchToken(never)), { status: 403, hint: /granted the audience/ }, 'JSON without `error` says no more')
  t.match(await failure(transport.fetchToken(never)), { status: 401, auth0Error: 'invalid_client', hint: undefined }, 'an OAuth error speaks for itself')
})

t.test('the refusal hint follows the client authentication method', async (t) => {
  const basic = await setup(t, 2000, { clientAuth: (a) => secretBasic(a.clientId, 'se+cret/with:odd~chars') })
  basic.auth0.enqueue({ kind: 'status', status: 401, body: '' })
  t.match(await failure(basic.transport.fetchToken(never)), { hint: /registered for client_secret_basic \(TOOLBRIDGE_AUTH0_CLIENT_AUTH\); the id or secret has characters Basic form-encodes \(RFC 6749 §2\.3\.1\) and some servers do not decode: try client_secret_post$/ })
  const plain = await setup(t, 2000, { clientAuth: (a) => secretBasic(a.clientId, 'plainsecret0123') })
  plain.auth0.enqueue({ kind: 'status', status: 401, body: '' })
  t.match(await failure(plain.transport.fetchToken(never)), { hint: /registered for client_secret_basic \(TOOLBRIDGE_AUTH0_CLIENT_AUTH\)$/ })
  const jwt = await setup(t, 2000, { clientAuth: () => ({ method: 'private_key_jwt', proof: () => ({ fields: [['client_assertion', 'x']], headers: {} }) }) })
  jwt.auth0.enqueue({ kind: 'status', status: 401, body: '' })
  t.equal((await failure(jwt.transport.fetchToken(never))).hint, 'no OAuth error in the answer; check the client id, the public key registered for it, the assertion\'s aud (TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE) and alg (TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG), and that the client is registered for private_key_jwt (TOOLBRIDGE_AUTH0_CLIENT_AUTH)')
  jwt.auth0.enqueue({ kind: 'status', status: 403, body: '' })
  t.equal((await failure(jwt.transport.fetchToken(never))).hint, `no OAuth error in the answer; check that the client is granted the audience ${jwt.auth0.audience}, and the client id, the public key registered for it, the assertion's aud (TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_AUDIENCE) and alg (TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG), and that the client is registered for private_key_jwt (TOOLBRIDGE_AUTH0_CLIENT_AUTH)`, 'no scope requested, none named')
})

t.test('a granted scope narrower than the requested one names the missing scopes', async (t) => {
  const { auth0, transport } = await setup(t, 2000, { scope: 'read:things write:things admin', auth0: { scopes: ['read:things', 'other:thing'] } })
  t.same((await transport.fetchToken(never)).missingScopes, ['write:things', 'admin'])
  auth0.scopes = ['admin', 'write:things', 'read:things', 'more']
  t.equal((await transport.fetchToken(never)).missingScopes, undefined, 'all granted (and more, as Auth0 does)')
  auth0.enqueue({ kind: 'status', status: 200, body: { access_token: 'abc', token_type: 'Bearer', expires_in: 60 } })
  t.equal((await transport.fetchToken(never)).missingScopes, undefined, 'no scope in the answer: the requested one (RFC 6749 §5.1)')
  auth0.enqueue({ kind: 'status', status: 200, body: { access_token: 'abc', token_type: 'Bearer', expires_in: 60, scope: 7 } })
  t.equal((await transport.fetchToken(never)).missingScopes, undefined, 'a scope that is no string is not read')
  const unscoped = await setup(t, 2000, { auth0: { scopes: [] } })
  t.equal((await unscoped.transport.fetchToken(never)).missingScopes, undefined, 'nothing requested, nothing missing')
})

t.test('a 429 asking for a day, without quota headers, is waited out for an hour', async (t) => {
  const { auth0, transport } = await setup(t)
  auth0.enqueue({ kind: 'status', status: 429, body: { error: 'too_many_requests', error_description: 'Client quota exceeded' }, headers: { 'retry-after': '86400' } })
  t.match(await failure(transport.fetchToken(never)), { status: 429, retryAfterMs: 3_600_000, retryAfterCapped: 'Retry-After: 86400' })
})

t.test('expires_in outside 5 s to 10 years is an invalid response; a fraction in range is floored', async (t) => {
  const { auth0, transport } = await setup(t)
  for (const expiresIn of [0.001, 4.999, 1e13, 315_360_001, Number.MAX_VALUE]) {
    auth0.enqueue({ kind: 'token', expiresIn })
    t.match(await failure(transport.fetchToken(never)), { kind: 'invalid_response', message: /expires_in .* is outside 5 s to 315360000 s/ }, `expires_in ${expiresIn}`)
  }
  auth0.enqueue({ kind: 'status', status: 200, body: '{"access_token":"abc","token_type":"Bearer","expires_in":1e400}' })
  t.match(await failure(transport.fetchToken(never)), { kind: 'invalid_response', message: /not a finite number/ }, 'JSON 1e400 is Infinity')
  for (const [expiresIn, floored] of [[5, 5], [5.9, 5], [3600.5, 3600], [315_360_000, 315_360_000]]) {
    auth0.enqueue({ kind: 'token', expiresIn })
    t.equal((await transport.fetchToken(never)).expiresInSeconds, floored, `expires_in ${expiresIn!}`)
  }
})

t.test('an access_token a bearer header cannot carry is an invalid response', async (t) => {
  const { auth0, transport } = await setup(t)
  for (const accessToken of ['abc\r\nx-injected: 1', 'abc def', 'abc\n', 'ab"c', 'abc,def', 'tøken', '=abc', 'abc=d']) {
    auth0.enqueue({ kind: 'token', accessToken })
    t.match(await failure(transport.fetchToken(never)), { kind: 'invalid_response', message: /b64token/ }, JSON.stringify(accessToken))
  }
  for (const accessToken of ['eyJ.a-b_c.d~e+f/g', 'abc==', 'A']) {
    auth0.enqueue({ kind: 'token', accessToken })
    t.equal((await transport.fetchToken(never)).accessToken, accessToken)
  }
})

t.test('upstream text is cleaned of configured secrets and capped before it can reach a log', async (t) => {
  const auth0 = await FakeAuth0.start({ clientSecret: 'sec/ret+with spaces&"quotes"-0123456789' })
  const scrubber = new SecretScrubber()
  scrubber.add(auth0.clientSecret)
  scrubber.add('the-sidecar-secret-0123456789abcdef')
  registerSecret('the-sidecar-secret-0123456789abcdef')
  const transport = new Auth0Transport({
    tokenUrl: new URL(auth0.tokenUrl),
    clientAuth: secretPost(auth0.clientId, auth0.clientSecret),
    audience: auth0.audience,
    timeoutMs: 2000,
    scrub: (text, max) => scrubber.scrub(text, max)
  })
  t.teardown(async () => {
    await transport.close()
    await auth0.close()
  })
  // An endpoint that echoes the request, as some proxies and debug servers do.
  const echo = (): string => auth0.requests.at(-1)!.rawBody
  auth0.enqueue({ kind: 'status', status: 400, body: { error: 'invalid_request', error_description: 'placeholder' } })
  await failure(transport.fetchToken(never))
  const raw = echo()
  auth0.enqueue(
    { kind: 'status', status: 400, body: { error: `bad ${auth0.clientSecret}`, error_description: `you sent ${raw} with the-sidecar-secret-0123456789abcdef` } },
    { kind: 'status', status: 502, body: `<html><body>\n<pre>${raw}</pre>\n${auth0.clientSecret}\r\n${'x'.repeat(500)}</body></html>`, contentType: 'text/html' }
  )
  const described = await failure(transport.fetchToken(never))
  const html = await failure(transport.fetchToken(never))
  const text = JSON.stringify([described, described.auth0Error, described.auth0Description, html.bodyExcerpt])
  t.notOk(text.includes(auth0.clientSecret), 'no client secret')
  t.notOk(text.includes(encodeURIComponent(auth0.clientSecret)), 'not URL-encoded either')
  t.notOk(text.includes(new URLSearchParams({ s: auth0.clientSecret }).toString().slice(2)), 'nor form-encoded')
  t.notOk(text.includes('the-sidecar-secret-0123456789abcdef'), 'no sidecar secret')
  t.match(described.auth0Description, /\[redacted\]/)
  t.match(html.bodyExcerpt, /^<html><body> <pre>/, 'control characters flattened')
  t.ok(html.bodyExcerpt!.length <= 201, 'capped')
})

t.test('the scrubber knows every form a secret takes in an echo', async (t) => {
  const scrubber = new SecretScrubber()
  const secret = 'a+b/c d="e"'
  scrubber.add(secret)
  scrubber.add(undefined)
  scrubber.add('')
  for (const form of [secret, encodeURIComponent(secret), 'a%2Bb%2Fc+d%3D%22e%22', JSON.stringify(secret).slice(1, -1), Buffer.from(secret).toString('base64'), Buffer.from(secret).toString('base64url')]) {
    t.equal(scrubber.scrub(`x ${form} y`, 100), 'x [redacted] y', form)
  }
  t.equal(scrubber.scrub('line\r\nbreak\u2028and\ttab', 100), 'line break and tab')
  t.equal(scrubber.scrub('abcdef', 3), 'abc…')
})
