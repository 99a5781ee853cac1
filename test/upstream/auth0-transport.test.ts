import { createServer } from 'node:net'
import t, { type Test } from 'tap'
import { TokenRequestError } from '../../src/engine/errors.js'
import { Auth0Transport, MAX_RESPONSE_BYTES } from '../../src/upstream/auth0-transport.js'
import { retryAfterMs } from '../../src/upstream/retry-after.js'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'

async function setup (t: Test, timeoutMs = 2000) {
  const auth0 = await FakeAuth0.start()
  const transport = new Auth0Transport({
    tokenUrl: new URL(auth0.tokenUrl),
    clientId: auth0.clientId,
    clientSecret: auth0.clientSecret,
    audience: auth0.audience,
    timeoutMs
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

t.test('sends the client-credentials grant as Auth0 documents it', async (t) => {
  const { auth0, transport } = await setup(t)
  const token = await transport.fetchToken(never)
  t.equal(token.accessToken, auth0.issued[0])
  t.equal(token.expiresInSeconds, 86400)
  const [request] = auth0.requests
  t.equal(request?.method, 'POST')
  t.equal(request?.path, '/oauth/token')
  t.match(request?.headers['content-type'], /^application\/json/)
  t.same(request?.body, { grant_type: 'client_credentials', client_id: auth0.clientId, client_secret: auth0.clientSecret, audience: auth0.audience })
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
  const transport = new Auth0Transport({ tokenUrl: new URL(`http://127.0.0.1:${port}/oauth/token`), clientId: 'x', clientSecret: 'y', audience: 'z', timeoutMs: 300 })
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
  const transport = new Auth0Transport({ tokenUrl: url, clientId: 'x', clientSecret: 'y', audience: 'z', timeoutMs: 1000 })
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
  t.equal(retryAfterMs({ 'retry-after': '120' }, 503, now), 120_000)
  t.equal(retryAfterMs({ 'retry-after': new Date(now + 90_000).toUTCString() }, 503, now), 90_000)
  t.equal(retryAfterMs({ 'retry-after': new Date(now - 90_000).toUTCString() }, 503, now), 0, 'a date in the past')
  t.equal(retryAfterMs({ 'retry-after': 'soon' }, 503, now), undefined)
  t.equal(retryAfterMs({ 'retry-after': 'soon', 'x-ratelimit-reset': String(now / 1000 + 9) }, 429, now), 9000)
  t.equal(retryAfterMs({ 'x-ratelimit-reset': String(now / 1000 + 9) }, 503, now), undefined, 'reset only counts on 429')
  t.equal(retryAfterMs({}, 429, now), undefined)
  t.equal(retryAfterMs({ 'retry-after': ['3', '9'] }, 503, now), 3000, 'a repeated header: the first counts')
})
