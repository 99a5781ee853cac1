import t from 'tap'
import { PROXY_SECRET, startProxy } from '../fixtures/proxy.js'

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
