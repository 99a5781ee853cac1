import t from 'tap'
import { Readable } from 'node:stream'
import { PROXY_SECRET, rawExchange, startProxy } from '../fixtures/proxy.js'

t.test('forwards method, path, query, headers and body, with the access token instead of the secret', async (t) => {
  const { api, sidecar, call } = await startProxy(t)
  const res = await call('/echo/a/b?x=1&y=%20z', {
    method: 'POST',
    headers: { 'content-type': 'application/json; charset=utf-8', 'x-tenant-id': 'tenant-7', 'x-tenant-secret': 'tenant-header-value' },
    body: '{"jsonrpc":"2.0","id":1}'
  })
  t.equal(res.status, 200)
  const echoed = JSON.parse(res.text)
  t.equal(echoed.method, 'POST')
  t.equal(echoed.url, '/echo/a/b?x=1&y=%20z')
  t.equal(echoed.body, '{"jsonrpc":"2.0","id":1}')
  t.equal(echoed.headers['content-type'], 'application/json; charset=utf-8')
  t.equal(echoed.headers['x-tenant-id'], 'tenant-7')
  t.equal(echoed.headers.authorization, `Bearer ${sidecar.auth0.issued[0]}`)
  t.equal(echoed.headers.host, `127.0.0.1:${api.port}`)
  t.notMatch(JSON.stringify(api.requests), PROXY_SECRET)
  t.equal(res.headers['x-api-echo'], 'yes')
  t.equal(res.headers['proxy-authenticate'], undefined, 'hop-by-hop response headers dropped')
})

t.test('a missing or wrong sidecar secret is 401 from the proxy, and nothing is forwarded', async (t) => {
  const { api, call, lines } = await startProxy(t)
  const missing = await call('/echo', { headers: { authorization: '' } })
  t.equal(missing.status, 401)
  t.equal(missing.headers['www-authenticate'], 'Bearer')
  t.same(JSON.parse(missing.text), { error: 'unauthorized', error_description: 'send the sidecar secret as Authorization: Bearer <secret>' })
  const wrong = await call('/echo', { method: 'POST', headers: { authorization: `Bearer ${PROXY_SECRET.slice(0, -1)}x`, 'content-type': 'text/plain' }, body: 'x' })
  t.equal(wrong.status, 401)
  t.match(JSON.parse(wrong.text), { error: 'unauthorized', error_description: 'the sidecar secret does not match' })
  t.equal(api.requests.length, 0)
  const rejected = lines().filter((l) => l.event === 'auth_rejected')
  t.equal(rejected.length, 1, 'one warning a minute')
  t.match(rejected[0], { level: 'warn', reason: 'missing_credentials', component: 'proxy' })
})

t.test('hop-by-hop request headers stay with the proxy; end-to-end ones, X-Forwarded-* included, go through', async (t) => {
  const { api, port } = await startProxy(t)
  const res = await rawExchange(port, [
    'PUT /echo HTTP/1.1',
    'Host: evil.example',
    `Authorization: Bearer ${PROXY_SECRET}`,
    'Connection: close, x-per-hop',
    'X-Per-Hop: dropped',
    'Keep-Alive: timeout=5',
    'TE: trailers',
    'Trailer: x-checksum',
    'Proxy-Authorization: Basic cHJveHk6cGFzcw==',
    'Proxy-Connection: keep-alive',
    'Expect: 100-continue',
    'X-Forwarded-Host: evil.example',
    'X-Forwarded-Proto: http',
    'X-Forwarded-For: 203.0.113.9',
    'Content-Type: text/plain',
    'Content-Length: 5',
    '', 'hello'].join('\r\n'))
  t.match(res, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/)
  t.equal(api.requests[0]!.headers.host, `127.0.0.1:${api.port}`, 'Host is the target, whatever the caller said')
  const seen = api.requests[0]!.headers
  for (const name of ['x-per-hop', 'keep-alive', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'expect']) t.equal(seen[name], undefined, `${name} dropped`)
  t.equal(seen['x-forwarded-host'], 'evil.example', 'passed on as sent, and the request still went to the target')
  t.equal(seen['x-forwarded-for'], '203.0.113.9')
  t.equal(api.requests[0]!.body.toString(), 'hello')
})

t.test('server-sent events stream through as the API writes them', async (t) => {
  const { url, auth } = await startProxy(t)
  const { request } = await import('undici')
  const started = Date.now()
  const res = await request(`${url}/sse?events=4&ms=150`, { headers: { ...auth, accept: 'text/event-stream' } })
  t.equal(res.statusCode, 200)
  t.equal(res.headers['content-type'], 'text/event-stream')
  const arrivals: Array<{ at: number, text: string }> = []
  for await (const chunk of res.body) arrivals.push({ at: Date.now() - started, text: String(chunk) })
  const text = arrivals.map((a) => a.text).join('')
  t.equal(text, [1, 2, 3, 4].map((n) => `id: ${n}\ndata: event ${n}\n\n`).join(''))
  t.ok(arrivals.length >= 3, `events arrived in ${arrivals.length} pieces, not at the end`)
  t.ok(arrivals[0]!.at < arrivals[arrivals.length - 1]!.at - 200, 'the first event arrived well before the last')
})

t.test('a large body streams through, with a Content-Length or chunked', async (t) => {
  const { api, call, url, auth } = await startProxy(t)
  const big = Buffer.alloc(300_000, 97)
  const res = await call('/echo', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: big })
  t.equal(res.status, 200)
  t.equal(JSON.parse(res.text).length, big.length)
  const { request } = await import('undici')
  async function * pieces () {
    for (let i = 0; i < 10; i++) yield Buffer.alloc(10_000, 98)
  }
  const chunked = await request(`${url}/echo`, { method: 'POST', headers: { ...auth, 'content-type': 'application/octet-stream' }, body: Readable.from(pieces()) })
  t.equal(chunked.statusCode, 200)
  t.equal((await chunked.body.json() as { length: number }).length, 100_000)
  t.equal(api.requests[1]!.headers['transfer-encoding'], 'chunked')
  const bodyless = await call('/echo', { method: 'POST' })
  t.equal(JSON.parse(bodyless.text).length, 0)
  const head = await call('/echo', { method: 'HEAD' })
  t.equal(head.status, 200)
  t.equal(head.text, '')
})

t.test('a body without a Content-Type is forwarded as it came', async (t) => {
  const { api, url, auth } = await startProxy(t)
  const { request } = await import('undici')
  const res = await request(`${url}/echo`, { method: 'POST', headers: { ...auth, 'content-length': '3' }, body: 'abc' })
  t.equal(res.statusCode, 200)
  await res.body.dump()
  t.equal(api.requests[0]!.body.toString(), 'abc')
  t.equal(api.requests[0]!.headers['content-type'], undefined)
})

t.test('a GET with a body is refused: the proxy would otherwise forward a length without the bytes', async (t) => {
  const { api, url, auth } = await startProxy(t)
  const { request } = await import('undici')
  const res = await request(`${url}/echo`, { method: 'GET', headers: { ...auth, 'content-type': 'text/plain' }, body: 'abc' })
  t.equal(res.statusCode, 400)
  t.match(await res.body.json(), { error: 'invalid_request', error_description: 'a GET request must not have a body' })
  t.equal(api.requests.length, 0)
})
