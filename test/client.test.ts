import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import {
  createTokenClient,
  sidecarAuth,
  SidecarAuthError,
  SidecarError,
  SidecarUnavailableError,
  SidecarUnreachableError
} from '../src/client/index.js'
import type { Behaviour } from './fixtures/fake-auth0.js'
import { blackhole } from './fixtures/blackhole.js'
import { registerSecret } from './fixtures/suite-log.js'
import { startSidecarApp } from './fixtures/sidecar-app.js'

const SECRET = 'client-test-sidecar-secret-0123456789abcdef'
registerSecret(SECRET)

/** The real sidecar app listening on loopback, its clock under the test's control. */
async function sidecarFor (t: Test, ...first: Behaviour[]) {
  const { auth0, app, clock } = await startSidecarApp(t, { secret: SECRET, first })
  await app.listen({ host: '127.0.0.1', port: 0 })
  return { auth0, clock, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` }
}

/** An API that accepts the tokens `accept` says yes to, recording what it was sent. */
async function apiFor (t: Test, accept: (token: string) => boolean) {
  const seen: Array<{ headers: IncomingHttpHeaders, body: string }> = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => { body += c.toString() })
    req.on('end', () => {
      seen.push({ headers: req.headers, body })
      const ok = accept(req.headers.authorization?.replace(/^Bearer /, '') ?? '')
      res.writeHead(ok ? 200 : 401, { 'content-type': 'text/plain' }).end(ok ? `ok ${body}` : 'unauthorized')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  return { seen, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }
}

t.test('token(), authorizationHeader() and refresh() against the real sidecar', async (t) => {
  const { auth0, clock, url } = await sidecarFor(t)
  const client = createTokenClient({ url, secret: SECRET })
  t.teardown(() => client.close())
  t.equal(await client.token(), auth0.issued[0])
  t.equal(await client.authorizationHeader(), `Bearer ${auth0.issued[0]}`)
  await clock.advance(11_000)
  const fresh = await client.refresh()
  t.equal(fresh, auth0.issued[1], 'a newer token after refresh')
  t.equal(await client.token(), fresh)
})

t.test('refresh(rejected) sends the rejected token\'s SHA-256: an older token costs no fetch', async (t) => {
  const { auth0, clock, url } = await sidecarFor(t)
  const client = createTokenClient({ url, secret: SECRET })
  t.teardown(() => client.close())
  await clock.advance(11_000)
  t.equal(await client.refresh('an-older-token-the-api-rejected'), auth0.issued[0], 'the current token, not a new one')
  t.equal(auth0.tokenRequests(), 1, 'nothing fetched')
  t.equal(await client.refresh(auth0.issued[0]), auth0.issued[1], 'the current token rejected: a new one')
  t.equal(auth0.tokenRequests(), 2)
})

t.test('a base URL with a path prefix', async (t) => {
  const { auth0, url } = await sidecarFor(t)
  const server = createServer((req, res) => {
    // A tiny path-stripping proxy stands in for a prefix in front of the sidecar.
    request(`${url}${req.url!.replace(/^\/sidecar/, '')}`, { method: req.method as 'GET', headers: { authorization: req.headers.authorization! } })
      .then(async (r) => res.writeHead(r.statusCode, { 'content-type': 'application/json' }).end(await r.body.text()), () => res.writeHead(502).end())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const client = createTokenClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/sidecar/`, secret: SECRET })
  t.teardown(() => client.close())
  t.equal(await client.token(), auth0.issued[0])
})

t.test('typed errors that help the operator, without secrets', async (t) => {
  const { url } = await sidecarFor(t, { kind: 'status', status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } })
  const wrong = createTokenClient({ url, secret: 'not-the-sidecar-secret-0123456789abcdef' })
  t.teardown(() => wrong.close())
  const authErr = await wrong.token().catch((e: unknown) => e)
  t.type(authErr, SidecarAuthError)
  t.match(authErr, { code: 'SIDECAR_UNAUTHORIZED', message: /TOOLBRIDGE_SIDECAR_SECRET must match/ })
  t.notMatch((authErr as Error).message, 'not-the-sidecar-secret')

  const right = createTokenClient({ url, secret: SECRET })
  t.teardown(() => right.close())
  const unavailable = await right.token().catch((e: unknown) => e)
  t.type(unavailable, SidecarUnavailableError)
  t.match(unavailable, { code: 'SIDECAR_TOKEN_UNAVAILABLE', retryAfterSeconds: 60, message: /no valid token \(503\): the latest token refresh failed \(access_denied\).*\/healthz/ })
  t.notMatch((unavailable as Error).message, SECRET)

  const gone = createTokenClient({ url: 'http://127.0.0.1:1', secret: SECRET, timeoutMs: 500 })
  t.teardown(() => gone.close())
  const unreachable = await gone.token().catch((e: unknown) => e)
  t.type(unreachable, SidecarUnreachableError)
  t.match(unreachable, { code: 'SIDECAR_UNREACHABLE', message: /unreachable \(ECONNREFUSED\)/ })
})

t.test('a hanging sidecar times out; a non-sidecar answer is a SidecarError', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/token') return
    res.writeHead(500, { 'content-type': 'application/json' }).end('{"error":"boom"}')
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const client = createTokenClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, secret: SECRET, timeoutMs: 200 })
  t.teardown(() => client.close())
  const started = Date.now()
  t.match(await client.token().catch((e: unknown) => e), { code: 'SIDECAR_UNREACHABLE', message: /after at most 200 ms/ })
  t.ok(Date.now() - started < 2000)
  const other = await client.refresh().catch((e: unknown) => e)
  t.type(other, SidecarError)
  t.match(other, { code: 'SIDECAR_BAD_RESPONSE', message: /answered 500 boom/ })
})

t.test('the interceptor sets the header on every request', async (t) => {
  const { auth0, url } = await sidecarFor(t)
  const api = await apiFor(t, (token) => auth0.issued.includes(token))
  const client = createTokenClient({ url, secret: SECRET })
  const agent = new Agent().compose(sidecarAuth(client))
  t.teardown(async () => {
    await agent.close()
    await client.close()
  })
  for (const headers of [undefined, { authorization: 'Bearer stale', 'x-a': '1' }, ['x-b', '2'], new Map([['x-c', '3']])]) {
    const res = await request(`${api.url}/notes`, { dispatcher: agent, headers: headers as Record<string, string> })
    t.equal(res.statusCode, 200)
    await res.body.dump()
  }
  t.equal(api.seen.length, 4)
  for (const seen of api.seen) t.equal(seen.headers.authorization, `Bearer ${auth0.issued[0]}`)
  t.equal(api.seen[1]!.headers['x-a'], '1')
  t.equal(api.seen[2]!.headers['x-b'], '2')
  t.equal(api.seen[3]!.headers['x-c'], '3')
})

t.test('on 401 it refreshes and retries exactly once', async (t) => {
  const { auth0, clock, url } = await sidecarFor(t)
  let acceptAny = true
  const api = await apiFor(t, (token) => acceptAny && token !== auth0.issued[0])
  const client = createTokenClient({ url, secret: SECRET })
  const agent = new Agent().compose(sidecarAuth(client))
  t.teardown(async () => {
    await agent.close()
    await client.close()
  })
  await clock.advance(11_000)
  // The API has revoked the first token.
  const res = await request(`${api.url}/notes`, { dispatcher: agent, method: 'POST', body: 'payload' })
  t.equal(res.statusCode, 200)
  t.equal(await res.body.text(), 'ok payload')
  t.equal(api.seen.length, 2, 'one retry')
  t.equal(api.seen[0]!.headers.authorization, `Bearer ${auth0.issued[0]}`)
  t.equal(api.seen[1]!.headers.authorization, `Bearer ${auth0.issued[1]}`, 'the retry carries the refreshed token')
  t.equal(api.seen[1]!.body, 'payload', 'the body is sent again')
  t.equal(auth0.tokenRequests(), 2, 'the refresh named the rejected token, so the sidecar fetched')

  acceptAny = false
  const rejected = await request(`${api.url}/notes`, { dispatcher: agent })
  t.equal(rejected.statusCode, 401, 'a second 401 reaches the caller')
  t.equal(await rejected.body.text(), 'unauthorized')
  t.equal(api.seen.length, 4, 'no second retry')
})

t.test('a streamed body is not replayed; sidecar errors reach the caller', async (t) => {
  const { auth0, url } = await sidecarFor(t)
  const api = await apiFor(t, () => false)
  const client = createTokenClient({ url, secret: SECRET })
  const agent = new Agent().compose(sidecarAuth(client))
  t.teardown(async () => {
    await agent.close()
    await client.close()
  })
  const { Readable } = await import('node:stream')
  const res = await request(`${api.url}/upload`, { dispatcher: agent, method: 'POST', body: Readable.from(['a', 'b']) })
  t.equal(res.statusCode, 401)
  await res.body.dump()
  t.equal(api.seen.length, 1)
  t.equal(auth0.issued.length, 1)

  const broken = createTokenClient({ url, secret: 'wrong-secret-for-this-sidecar-0123456789' })
  const brokenAgent = new Agent().compose(sidecarAuth(broken))
  t.teardown(async () => {
    await brokenAgent.close()
    await broken.close()
  })
  await t.rejects(request(`${api.url}/x`, { dispatcher: brokenAgent }), { code: 'SIDECAR_UNAUTHORIZED' })
  t.equal(api.seen.length, 1, 'nothing sent without a token')
})

t.test('a refresh that fails after a 401 reaches the caller', async (t) => {
  // A stand-in sidecar whose refresh answers 503.
  const sidecar = createServer((req, res) => {
    if (req.method === 'GET') res.writeHead(200, { 'content-type': 'application/json' }).end('{"access_token":"old-token","token_type":"Bearer","expires_in":60,"expires_at":null}')
    else res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '7' }).end('{"error":"token_unavailable","error_description":"refresh failed"}')
  })
  await new Promise<void>((resolve) => sidecar.listen(0, '127.0.0.1', resolve))
  t.teardown(() => sidecar.close())
  const api = await apiFor(t, () => false)
  const client = createTokenClient({ url: `http://127.0.0.1:${(sidecar.address() as AddressInfo).port}`, secret: SECRET })
  const agent = new Agent().compose(sidecarAuth(client))
  t.teardown(async () => {
    await agent.close()
    await client.close()
  })
  await t.rejects(request(`${api.url}/x`, { dispatcher: agent }), { code: 'SIDECAR_TOKEN_UNAVAILABLE', retryAfterSeconds: 7 })
  t.equal(api.seen.length, 1)
})

t.test('transport failures and invalid requests reach the caller as errors', async (t) => {
  const { url } = await sidecarFor(t)
  const server = createServer((req) => req.socket.destroy())
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const client = createTokenClient({ url, secret: SECRET })
  const agent = new Agent().compose(sidecarAuth(client))
  t.teardown(async () => {
    await agent.close()
    await client.close()
  })
  const api = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  await t.rejects(request(`${api}/x`, { dispatcher: agent }), { code: 'UND_ERR_SOCKET' })
  await t.rejects(request(`${api}/x`, { dispatcher: agent, headers: { 'x-bad': 'a\nb' } }), { code: 'UND_ERR_INVALID_ARG' })
})

t.test('odd sidecar answers: 503 without details, 200 without a token, a body that is not JSON', async (t) => {
  const answers = [
    [503, {}, 'service unavailable'],
    [200, { 'content-type': 'application/json' }, '{"token_type":"Bearer"}'],
    [502, {}, '<html>bad gateway</html>'],
    [400, {}, 'no']
  ] as const
  let i = 0
  const server = createServer((_req, res) => {
    const [status, headers, body] = answers[i++]!
    res.writeHead(status, headers).end(body)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const client = createTokenClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, secret: SECRET })
  t.teardown(() => client.close())
  t.match(await client.token().catch((e: unknown) => e), { code: 'SIDECAR_TOKEN_UNAVAILABLE', retryAfterSeconds: undefined, message: /no valid token \(503\); see its \/healthz/ })
  t.match(await client.token().catch((e: unknown) => e), { code: 'SIDECAR_BAD_RESPONSE', message: /answered 200 without a token/ })
  t.match(await client.token().catch((e: unknown) => e), { code: 'SIDECAR_BAD_RESPONSE', message: /answered 502 without a token/ })
  t.match(await client.token().catch((e: unknown) => e), { code: 'SIDECAR_BAD_REQUEST', message: /refused the request \(400\): bad request/ })
})

t.test('an audience option asks for that audience\'s token; one the sidecar does not serve is a clear 400 error', async (t) => {
  const audiences = ['https://toolbridgeapi.erauner.dev', 'https://reports.example']
  const { auth0, app, clock } = await startSidecarApp(t, { secret: SECRET, auth0: { audiences }, env: { TOOLBRIDGE_AUTH0_AUDIENCE: audiences.join(' ') } })
  await app.listen({ host: '127.0.0.1', port: 0 })
  const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const aud = (token: string): string => (JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as { aud: string }).aud
  const reports = createTokenClient({ url, secret: SECRET, audience: 'https://reports.example' })
  const plain = createTokenClient({ url, secret: SECRET })
  const stranger = createTokenClient({ url, secret: SECRET, audience: 'https://not-here.example' })
  t.teardown(async () => {
    await reports.close()
    await plain.close()
    await stranger.close()
  })
  t.equal(aud(await reports.token()), 'https://reports.example')
  t.equal(aud(await plain.token()), audiences[0], 'no audience: the default')
  await clock.advance(11_000)
  const refreshed = await reports.refresh(await reports.token())
  t.equal(aud(refreshed), 'https://reports.example', 'refresh goes to the same audience')
  t.equal(auth0.requestsFor('https://reports.example'), 2)
  t.equal(auth0.requestsFor(audiences[0]), 1)
  const err = await stranger.token().catch((e: unknown) => e)
  t.type(err, SidecarError)
  t.match(err, { code: 'SIDECAR_BAD_REQUEST', message: /refused the request \(400\): this sidecar serves tokens for these audiences only: https:\/\/toolbridgeapi\.erauner\.dev, https:\/\/reports\.example/ })
})

t.test('failover: a name that resolves to a refusing and a silent address before the live one is still answered within the call', async (t) => {
  const { auth0, url } = await sidecarFor(t)
  const port = Number(new URL(url).port)
  const silent = await blackhole('127.0.0.3', port)
  t.teardown(() => silent.close())
  // Two `tokens` Machines and a dead one, as Fly's internal DNS would list them; 127.0.0.2:port refuses.
  const addresses = [{ address: '127.0.0.2', family: 4 }, { address: '127.0.0.3', family: 4 }, { address: '127.0.0.1', family: 4 }]
  const resolved: string[] = []
  const lookup = ((hostname: string, options: { all?: boolean }, callback: (err: Error | null, addresses: unknown, family?: number) => void) => {
    resolved.push(hostname)
    if (options.all === true) callback(null, addresses)
    else callback(null, addresses[0]!.address, 4)
  }) as unknown as import('node:net').LookupFunction
  const client = createTokenClient({ url: `http://tokens.process.my-app.internal:${port}`, secret: SECRET, lookup, connectAttemptTimeoutMs: 300, timeoutMs: 2000 })
  t.teardown(() => client.close())
  const started = Date.now()
  t.equal(await client.token(), auth0.issued[0])
  const ms = Date.now() - started
  t.ok(ms >= 250 && ms < 2000, `the silent address cost one attempt timeout: ${ms} ms`)
  t.same(resolved, ['tokens.process.my-app.internal'])

  const none = createTokenClient({ url: `http://tokens.process.my-app.internal:${port}`, secret: SECRET, lookup: ((_h: string, o: { all?: boolean }, cb: (e: Error | null, a: unknown, f?: number) => void) => { if (o.all === true) cb(null, addresses.slice(0, 2)); else cb(null, '127.0.0.2', 4) }) as unknown as import('node:net').LookupFunction, connectAttemptTimeoutMs: 300, timeoutMs: 1500 })
  t.teardown(() => none.close())
  t.match(await none.token().catch((e: unknown) => e), { code: 'SIDECAR_UNREACHABLE' }, 'with no live address: unreachable, within the call\'s timeout')
})

/** A lookup that answers `addresses` for the sidecar's name, recording each query. */
function lookupOf (addresses: () => string[]) {
  const asked: string[] = []
  const lookup = ((hostname: string, options: { all?: boolean }, callback: (err: Error | null, addresses: unknown, family?: number) => void) => {
    asked.push(hostname)
    const list = addresses()
    if (list.length === 0) {
      callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), undefined)
      return
    }
    if (options.all === true) callback(null, list.map((address) => ({ address, family: 4 })))
    /* c8 ignore next -- the client always asks for every address */
    else callback(null, list[0], 4)
  }) as unknown as import('node:net').LookupFunction
  return { lookup, asked }
}

/**
 * Fly's `tokens.process.<app>.internal` during a bad blue-green deploy, on one port:
 * 127.0.0.1 a healthy sidecar, 127.0.0.2 a green sidecar whose token fetch failed
 * (503 token_unavailable), 127.0.0.3 a Machine that never answers, 127.0.0.4 one that refuses.
 */
async function badDeploy (t: Test) {
  const healthy = await sidecarFor(t)
  const port = Number(new URL(healthy.url).port)
  const green = await startSidecarApp(t, { secret: SECRET, first: [{ kind: 'status', status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } }] })
  const hits = { healthy: 0, green: 0 }
  green.app.addHook('onRequest', async () => { hits.green++ })
  await green.app.listen({ host: '127.0.0.2', port })
  const silent = await blackhole('127.0.0.3', port)
  t.teardown(() => silent.close())
  return { healthy, port, hits, url: `http://tokens.process.my-app.internal:${port}` }
}

t.test('failover: a 503 from one Machine, a refusing and a silent one, then the healthy one, within one call', async (t) => {
  const { healthy, hits, url } = await badDeploy(t)
  const { lookup, asked } = lookupOf(() => ['127.0.0.2', '127.0.0.4', '127.0.0.3', '127.0.0.1'])
  const client = createTokenClient({ url, secret: SECRET, lookup, connectAttemptTimeoutMs: 300, timeoutMs: 2000 })
  t.teardown(() => client.close())
  const started = Date.now()
  t.equal(await client.token(), healthy.auth0.issued[0], 'the 503 was not the answer')
  const ms = Date.now() - started
  t.ok(ms >= 250 && ms < 2000, `one attempt timeout for the silent address, within the call: ${ms} ms`)
  t.equal(hits.green, 1, 'the green sidecar was asked once and answered 503')

  t.equal(await client.token(), healthy.auth0.issued[0])
  t.equal(hits.green, 1, 'the next call goes to the Machine that answered last')
  t.same(asked, ['tokens.process.my-app.internal'], 'one DNS query for both calls')
  t.equal(await client.refresh('an-older-token'), healthy.auth0.issued[0], 'refresh fails over the same way')
})

t.test('failover: with no healthy Machine the 503 is the answer, and the call keeps its deadline', async (t) => {
  const { hits, url } = await badDeploy(t)
  let answer = ['127.0.0.4', '127.0.0.3', '127.0.0.2']
  const { lookup, asked } = lookupOf(() => answer)
  const client = createTokenClient({ url, secret: SECRET, lookup, connectAttemptTimeoutMs: 200, timeoutMs: 2000 })
  t.teardown(() => client.close())
  const err = await client.token().catch((e: unknown) => e)
  t.type(err, SidecarUnavailableError, 'a Machine without a token says more than one that did not answer')
  t.match(err, { code: 'SIDECAR_TOKEN_UNAVAILABLE', retryAfterSeconds: Number })
  t.equal(hits.green, 1)

  // Every address failed, so the next call asks DNS again: the refusing one is all that is left.
  answer = ['127.0.0.4']
  t.match(await client.token().catch((e: unknown) => e), { code: 'SIDECAR_UNREACHABLE', message: /ECONNREFUSED/ })
  t.equal(asked.length, 2)
  answer = []
  t.match(await client.token().catch((e: unknown) => e), { code: 'SIDECAR_UNREACHABLE', message: /unreachable \(ENOTFOUND\)/ })

  // A silent Machine that takes the whole deadline leaves no time for the next one: the caller's deadline wins.
  answer = ['127.0.0.3', '127.0.0.1']
  const slow = createTokenClient({ url, secret: SECRET, lookup, connectAttemptTimeoutMs: 5_000, timeoutMs: 300 })
  t.teardown(() => slow.close())
  const started = Date.now()
  t.match(await slow.token().catch((e: unknown) => e), { code: 'SIDECAR_UNREACHABLE', message: /after at most 300 ms/ })
  t.ok(Date.now() - started < 2000, 'bounded by timeoutMs, not by the attempts')
})

t.test('failover: a 401 is the same on every Machine, so it ends the call', async (t) => {
  const { hits, url } = await badDeploy(t)
  const { lookup } = lookupOf(() => ['127.0.0.1', '127.0.0.2'])
  const wrong = createTokenClient({ url, secret: 'not-the-sidecar-secret-0123456789abcdef', lookup })
  t.teardown(() => wrong.close())
  t.type(await wrong.token().catch((e: unknown) => e), SidecarAuthError)
  t.equal(hits.green, 0, 'the second address was not asked')
})

t.test('a dispatcher of the caller\'s own: one attempt through it, its failures as the client\'s errors', async (t) => {
  const { url } = await sidecarFor(t)
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.close())
  const client = createTokenClient({ url, secret: SECRET, dispatcher })
  t.teardown(() => client.close())
  t.match(await client.token(), /\S/, 'a token through the given dispatcher')

  const unavailable = createServer((_req, res) => {
    res.writeHead(503, { 'content-type': 'application/json', 'retry-after': '4' }).end('{"error":"token_unavailable","error_description":"no token yet"}')
  })
  await new Promise<void>((resolve) => unavailable.listen(0, '127.0.0.1', resolve))
  t.teardown(() => unavailable.close())
  const down = createTokenClient({ url: `http://127.0.0.1:${(unavailable.address() as AddressInfo).port}`, secret: SECRET, dispatcher })
  t.teardown(() => down.close())
  // With a dispatcher there is no next address: the 503 is the answer at once.
  await t.rejects(down.token(), { code: 'SIDECAR_TOKEN_UNAVAILABLE', retryAfterSeconds: 4 })
})

t.test('failover without Happy Eyeballs: the pinned lookup answers a single address too', async (t) => {
  const net = await import('node:net')
  const before = net.getDefaultAutoSelectFamily()
  // Node then asks the lookup for one address instead of all of them.
  net.setDefaultAutoSelectFamily(false)
  t.teardown(() => net.setDefaultAutoSelectFamily(before))
  const { url } = await sidecarFor(t)
  const { port } = new URL(url)
  const lookup = ((_host: string, options: { all?: boolean }, callback: (err: Error | null, address: unknown, family?: number) => void) => {
    if (options.all === true) callback(null, [{ address: '127.0.0.1', family: 4 }])
    else callback(null, '127.0.0.1', 4)
  }) as unknown as import('node:net').LookupFunction
  const client = createTokenClient({ url: `http://sidecar.test:${port}`, secret: SECRET, lookup })
  t.teardown(() => client.close())
  t.match(await client.token(), /\S/)
})

t.test('a call whose deadline passes while the name resolves fails as unreachable', async (t) => {
  const { url } = await sidecarFor(t)
  const { port } = new URL(url)
  const slowLookup = ((_host: string, options: { all?: boolean }, callback: (err: Error | null, address: unknown, family?: number) => void) => {
    setTimeout(() => {
      if (options.all === true) callback(null, [{ address: '127.0.0.1', family: 4 }])
      else callback(null, '127.0.0.1', 4)
    }, 50)
  }) as unknown as import('node:net').LookupFunction
  const client = createTokenClient({ url: `http://sidecar.test:${port}`, secret: SECRET, lookup: slowLookup, timeoutMs: 5 })
  t.teardown(() => client.close())
  await t.rejects(client.token(), { code: 'SIDECAR_UNREACHABLE' })
})

t.test('with a dispatcher of the caller\'s own, a wrong secret is the auth error', async (t) => {
  const { url } = await sidecarFor(t)
  const dispatcher = new Agent()
  t.teardown(() => dispatcher.close())
  const client = createTokenClient({ url, secret: 'not-the-sidecar-secret-0123456789abcdef', dispatcher })
  t.teardown(() => client.close())
  await t.rejects(client.token(), { code: 'SIDECAR_UNAUTHORIZED' })
})
