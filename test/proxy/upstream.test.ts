import t from 'tap'
import { createServer } from 'node:net'
import { request } from 'undici'
import { startProxy } from '../fixtures/proxy.js'

/** A loopback port nothing listens on. */
async function closedPort (): Promise<number> {
  const server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  await new Promise<void>((resolve) => server.close(() => resolve()))
  return port
}

t.test('target unreachable: 502 bad_gateway as OAuth-style JSON, logged without secrets', async (t) => {
  const port = await closedPort()
  const { call, lines } = await startProxy(t, { proxy: { target: new URL(`http://127.0.0.1:${port}`) } })
  const res = await call('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(res.status, 502)
  t.same(JSON.parse(res.text), { error: 'bad_gateway', error_description: 'the API could not be reached (ECONNREFUSED)' })
  t.match(lines().find((l) => l.event === 'proxy_upstream_failed'), { level: 'warn', code: 'ECONNREFUSED', target: `http://127.0.0.1:${port}`, method: 'POST' })
})

t.test('the API too slow with its headers: 504 gateway_timeout', async (t) => {
  const { call, lines } = await startProxy(t, { proxy: { headersTimeoutMs: 200 } })
  const res = await call('/slow?ms=3000')
  t.equal(res.status, 504)
  t.same(JSON.parse(res.text), { error: 'gateway_timeout', error_description: 'the API did not answer in time (UND_ERR_HEADERS_TIMEOUT)' })
  t.match(lines().find((l) => l.event === 'proxy_upstream_failed'), { code: 'UND_ERR_HEADERS_TIMEOUT' })
})

t.test('the API closing mid-body: the caller sees a cut-off body, not a complete one', async (t) => {
  const { url, auth, call } = await startProxy(t)
  const res = await request(`${url}/cut`, { headers: auth })
  t.equal(res.statusCode, 200)
  await t.rejects(res.body.text())
  t.equal((await call('/echo')).status, 200, 'the proxy carries on')
})

t.test('an API error status goes back as it is, sent once', async (t) => {
  const { api, call } = await startProxy(t)
  const res = await call('/status/503')
  t.equal(res.status, 503)
  t.equal(res.headers['retry-after'], '7')
  t.equal(res.text, '{"status":true}')
  t.equal(api.requests.length, 1, 'no retries of its own')
})

t.test('metrics: requests by method and status class, upstream latency, bytes', async (t) => {
  const { call, registry } = await startProxy(t)
  await call('/echo', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'hello' })
  await call('/sse?events=2&ms=5')
  await call('/status/404', { method: 'PATCH' })
  await call('/echo', { method: 'PROPFIND' }).catch(() => undefined)
  await call('/echo', { headers: { authorization: 'Bearer nope-nope-nope' } })
  const text = await registry.metrics()
  t.match(text, /tokensidecar_proxy_requests_total\{method="POST",status_class="2xx"\} 1/)
  t.match(text, /tokensidecar_proxy_requests_total\{method="GET",status_class="2xx"\} 1/)
  t.match(text, /tokensidecar_proxy_requests_total\{method="PATCH",status_class="4xx"\} 1/)
  t.match(text, /tokensidecar_proxy_requests_total\{method="GET",status_class="4xx"\} 1/)
  t.match(text, /tokensidecar_proxy_upstream_duration_seconds_count 3/)
  t.match(text, /tokensidecar_proxy_body_bytes_total\{direction="request"\} 5/)
  const response = Number(/tokensidecar_proxy_body_bytes_total\{direction="response"\} (\d+)/.exec(text)![1])
  t.ok(response > 60, `${response} response bytes counted, streamed ones included`)
  // A second scrape reports no new requests twice.
  t.match(await registry.metrics(), /tokensidecar_proxy_requests_total\{method="POST",status_class="2xx"\} 1/)
})

t.test('unknown methods are counted as other', async (t) => {
  const { createProxyMetrics } = await import('../../src/metrics/metrics.js')
  const { Registry } = await import('prom-client')
  const registry = new Registry()
  const metrics = createProxyMetrics(registry)
  metrics.answered('SEARCH', 200)
  t.match(await registry.metrics(), /tokensidecar_proxy_requests_total\{method="other",status_class="2xx"\} 1/)
})

t.test('debug: one line per proxied request, with no header value and no query string', async (t) => {
  const { call, lines } = await startProxy(t, { logLevel: 'debug' })
  await call('/echo/x?api_key=query-secret-value', { headers: { 'x-tenant-id': 'tenant-header-value' } })
  const logged = lines().filter((l) => l.event === 'proxy_request')
  t.equal(logged.length, 1)
  t.match(logged[0], { level: 'debug', method: 'GET', path: '/echo/x', status: 200, retried: false, upstream_ms: Number, duration_ms: Number })
  await call('/echo', { headers: { authorization: 'Bearer wrong-wrong-wrong' } })
  t.match(lines().filter((l) => l.event === 'proxy_request')[1], { status: 401, path: '/echo', upstream_ms: null, retried: false }, 'a refused request is logged too')
  const text = JSON.stringify(lines())
  t.notMatch(text, 'query-secret-value')
  t.notMatch(text, 'tenant-header-value')
})
