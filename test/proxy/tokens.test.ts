import t from 'tap'
import { PROXY_SECRET, startProxy } from '../fixtures/proxy.js'
import { until } from '../fixtures/fake-clock.js'

const S = 1000

t.test('an API 401 on a held body: a forced refresh naming the rejected token, then one retry with the new token', async (t) => {
  const { api, sidecar, call, registry, lines } = await startProxy(t)
  // Past the forced-refresh spacing since the start-up token.
  await sidecar.clock.advance(11 * S)
  api.rejectNext(1)
  const res = await call('/echo/tools/call', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"id":2}' })
  t.equal(res.status, 200)
  t.equal(JSON.parse(res.text).body, '{"id":2}', 'the same body, sent again')
  t.equal(api.requests.length, 2)
  t.equal(api.requests[0]!.token, sidecar.auth0.issued[0])
  t.equal(api.requests[1]!.token, sidecar.auth0.issued[1], 'the retry carries the new token')
  t.equal(sidecar.auth0.tokenRequests(), 2)
  t.equal(res.headers['www-authenticate'], undefined, 'nothing of the 401 is left in the answer')
  t.match(await registry.getSingleMetricAsString('tokensidecar_proxy_unauthorized_retries_total'), /tokensidecar_proxy_unauthorized_retries_total 1/)
  t.match(lines().find((l) => l.event === 'proxy_retry'), { level: 'info', method: 'POST' })
  t.match(sidecar.lines().find((l) => l.event === 'token_refreshed' && l.trigger === 'forced'), {})

  // A body-less request is held too (there is nothing to lose).
  await sidecar.clock.advance(30 * S)
  api.rejectNext(1)
  t.equal((await call('/echo')).status, 200)
  t.equal(api.requests[3]!.token, sidecar.auth0.issued[2])
})

t.test('a second 401, on the retry, is passed back', async (t) => {
  const { api, sidecar, call } = await startProxy(t)
  await sidecar.clock.advance(11 * S)
  api.rejectNext(2)
  const res = await call('/echo', { method: 'DELETE' })
  t.equal(res.status, 401)
  t.equal(res.headers['www-authenticate'], 'Bearer error="invalid_token"')
  t.equal(api.requests.length, 2)
})

t.test('too soon after the last token: forced-refresh spacing holds, and the 401 is passed back', async (t) => {
  const { api, sidecar, call } = await startProxy(t)
  api.rejectNext(1)
  const res = await call('/echo', { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' })
  t.equal(res.status, 401)
  t.same(JSON.parse(res.text), { error: 'invalid_token' })
  t.equal(api.requests.length, 1, 'not sent again with the same token')
  t.equal(sidecar.auth0.tokenRequests(), 1)
})

t.test('a streamed body cannot be sent again: the 401 goes back, and the refresh still happens for the next request', async (t) => {
  const { api, sidecar, call } = await startProxy(t)
  await sidecar.clock.advance(11 * S)
  api.rejectNext(1)
  const big = Buffer.alloc(100_000, 99)
  const res = await call('/echo', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: big })
  t.equal(res.status, 401)
  t.equal(api.requests.length, 1)
  await until(() => sidecar.auth0.tokenRequests() === 2)
  const next = await call('/echo', { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: big })
  t.equal(next.status, 200)
  t.equal(api.requests[1]!.token, sidecar.auth0.issued[1])
})

t.test('a failed forced refresh passes the 401 back', async (t) => {
  const { api, sidecar, call } = await startProxy(t)
  await sidecar.clock.advance(11 * S)
  sidecar.auth0.enqueue({ kind: 'status', status: 500, body: { error: 'server_error' } })
  api.rejectNext(1)
  const res = await call('/echo')
  t.equal(res.status, 401)
  t.equal(api.requests.length, 1)
})

t.test('no token: 503 token_unavailable with Retry-After, as GET /token answers, and nothing forwarded', async (t) => {
  const { api, call } = await startProxy(t, { first: [{ kind: 'status', status: 401, body: { error: 'access_denied', error_description: 'Unauthorized' } }] })
  const res = await call('/echo', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' })
  t.equal(res.status, 503)
  t.ok(Number(res.headers['retry-after']) >= 1)
  t.match(JSON.parse(res.text), { error: 'token_unavailable' })
  t.equal(api.requests.length, 0)
})

t.test('a request waits for a token being fetched, then goes through', async (t) => {
  const { api, sidecar, call } = await startProxy(t, { first: [{ kind: 'status', status: 500, body: { error: 'server_error' } }, { kind: 'delay', ms: 300, then: { kind: 'token' } }] })
  t.equal(sidecar.source.current(), undefined)
  // The retry after the failed start-up fetch begins, and takes 300 ms.
  await sidecar.clock.advance(60 * S)
  t.equal(sidecar.auth0.requests.length, 2)
  const res = await call('/echo')
  t.equal(res.status, 200)
  t.equal(api.requests[0]!.token, sidecar.auth0.issued[0])
})

t.test('the secret never reaches the API, the logs or the answers', async (t) => {
  const { api, call, lines } = await startProxy(t, { logLevel: 'debug' })
  await call('/echo', { headers: { 'x-tenant-secret': 'tenant-header-value-123' } })
  t.notMatch(JSON.stringify(api.requests), PROXY_SECRET)
  t.notMatch(JSON.stringify(lines()), 'tenant-header-value-123')
})
