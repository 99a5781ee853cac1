import t from 'tap'
import { connect } from 'node:net'
import { request } from 'undici'
import { PROXY_SECRET, rawExchange, startProxy } from '../fixtures/proxy.js'
import { until } from '../fixtures/fake-clock.js'

const AUTH = `Authorization: Bearer ${PROXY_SECRET}`

/** A raw request line with the secret and Connection: close. */
const raw = (line: string, ...headers: string[]): string => [line, 'Host: proxy.local', AUTH, 'Connection: close', ...headers, '', ''].join('\r\n')

t.test('absolute-form and asterisk targets are refused, whatever host they name', async (t) => {
  const { api, port } = await startProxy(t)
  for (const line of ['GET http://evil.example/steal HTTP/1.1', `GET http://127.0.0.1:${port}/echo HTTP/1.1`, 'OPTIONS * HTTP/1.1']) {
    const res = await rawExchange(port, raw(line))
    t.match(res, /^HTTP\/1\.1 400 /, line)
    t.match(res, /"error":"invalid_request"/)
  }
  t.equal(api.requests.length, 0)
})

t.test('a Host header never picks the destination; X-Forwarded-* neither', async (t) => {
  const { api, port } = await startProxy(t)
  const res = await rawExchange(port, ['GET /echo HTTP/1.1', 'Host: evil.example:443', AUTH, 'X-Forwarded-Host: evil.example', 'X-Forwarded-Proto: https', 'X-Forwarded-Port: 443', 'Forwarded: host=evil.example', 'Connection: close', '', ''].join('\r\n'))
  t.match(res, /^HTTP\/1\.1 200 /)
  t.equal(api.requests.length, 1, 'it reached the target')
  t.equal(api.requests[0]!.headers.host, `127.0.0.1:${api.port}`)
})

t.test('dot segments, encoded slashes and backslashes are refused; a doubled slash stays on the target', async (t) => {
  const { api, port } = await startProxy(t)
  const refused = ['/echo/../admin', '/..', '/echo/%2e%2e/admin', '/echo/.%2E/admin', '/echo/./x', '/echo%2Fadmin', '/echo%2fadmin', '/echo%5Cadmin', '/echo\\..\\admin', '/echo/%zz']
  for (const path of refused) {
    const res = await rawExchange(port, raw(`GET ${path} HTTP/1.1`))
    t.match(res, /^HTTP\/1\.1 400 /, path)
  }
  t.equal(api.requests.length, 0)
  const doubled = await rawExchange(port, raw('GET //evil.example/echo?x=/../ HTTP/1.1'))
  t.match(doubled, /^HTTP\/1\.1 200 /)
  t.equal(api.requests[0]!.url, '//evil.example/echo?x=/../', 'the same path and query, on the target')
  const dots = await rawExchange(port, raw('GET /echo/a..b/c.d HTTP/1.1'))
  t.match(dots, /^HTTP\/1\.1 200 /, 'dots inside a segment are fine')
  // @fastify/reply-from refuses any path with "/.." or "../" in it, even inside a segment.
  t.match(await rawExchange(port, raw('GET /echo/...x HTTP/1.1')), /^HTTP\/1\.1 400 /)
})

t.test('CR or LF inside a header is refused by the parser before anything is forwarded', async (t) => {
  const { api, port } = await startProxy(t)
  const attempts = [
    `GET /echo HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nX-A: one\rX-Injected: yes\r\nConnection: close\r\n\r\n`,
    `GET /echo HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nX-A: one\nX-Injected: yes\r\nConnection: close\r\n\r\n`,
    `GET /echo HTTP/1.1\r\nHost: x\r\n${AUTH}\r\nX-A: one\r\n X-Injected: yes\r\nConnection: close\r\n\r\n`
  ]
  for (const attempt of attempts) {
    const res = await rawExchange(port, attempt)
    if (/^HTTP\/1\.1 200 /.test(res)) {
      // Node may take a bare LF as a line end: then it is a header of its own, still never inside another's value.
      for (const seen of api.requests) for (const value of Object.values(seen.headers)) t.notMatch(String(value), /[\r\n]/)
    } else {
      t.match(res, /^HTTP\/1\.1 400 /)
    }
  }
  for (const seen of api.requests) t.equal(seen.headers['x-a']?.includes('\r'), false)
})

t.test('an oversized body: 413 before a byte is forwarded (Content-Length), or as soon as it passes the cap (chunked)', async (t) => {
  const { api, port, url, auth } = await startProxy(t, { proxy: { maxBodyBytes: 1000 } })
  const res = await rawExchange(port, raw('POST /echo HTTP/1.1', 'Content-Type: text/plain', 'Content-Length: 1000000'))
  t.match(res, /^HTTP\/1\.1 413 /)
  t.match(res, /"error":"payload_too_large"/)
  t.match(res, /connection: close/i)
  t.equal(api.requests.length, 0)

  const pieces = [Buffer.alloc(600, 97), Buffer.alloc(600, 98)]
  const { Readable } = await import('node:stream')
  const chunked = await request(`${url}/echo`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: Readable.from(pieces) })
  t.equal(chunked.statusCode, 413)
  t.match(await chunked.body.json(), { error: 'payload_too_large' })
  const under = await request(`${url}/echo`, { method: 'POST', headers: { ...auth, 'content-type': 'text/plain' }, body: Readable.from([pieces[0]!]) })
  t.equal(under.statusCode, 200)
  await under.body.dump()
})

t.test('a caller that goes away mid-body: nothing is forwarded, and the proxy carries on', async (t) => {
  const { api, port, call } = await startProxy(t)
  for (const length of [1000, 1_000_000]) {
    const socket = connect(port, '127.0.0.1')
    socket.on('error', () => {})
    socket.write(raw('POST /echo HTTP/1.1', 'Content-Type: text/plain', `Content-Length: ${length}`).replace(/\r\n$/, '') + '\r\nonly the start')
    await new Promise((resolve) => setTimeout(resolve, 100))
    socket.destroy()
  }
  const chunked = connect(port, '127.0.0.1')
  chunked.on('error', () => {})
  chunked.write(raw('POST /echo HTTP/1.1', 'Content-Type: text/plain', 'Transfer-Encoding: chunked').replace(/\r\n$/, '') + '\r\n5\r\nhello\r\n')
  await new Promise((resolve) => setTimeout(resolve, 100))
  chunked.destroy()
  await new Promise((resolve) => setTimeout(resolve, 100))
  t.equal(api.requests.length, 0, 'no request reached the API complete')
  t.equal((await call('/echo')).status, 200)
})

t.test('a body that trickles in is cut off by the request timeout', async (t) => {
  const { port } = await startProxy(t, { proxy: { limits: { requestTimeoutMs: 300, headersTimeoutMs: 200 } } })
  const socket = connect(port, '127.0.0.1')
  let received = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
  // A write that races the server's close is reset (Node 24 reports it): the answer is what counts.
  socket.on('error', () => {})
  const closed = new Promise((resolve) => socket.once('close', resolve))
  socket.write(raw('POST /echo HTTP/1.1', 'Content-Type: text/plain', 'Content-Length: 1000').replace(/\r\n$/, '') + '\r\nabc')
  // Bytes keep coming at 100 and 200 ms, yet the whole request is cut off at 300 ms; no write after that.
  let drops = 0
  const drip = setInterval(() => {
    if (++drops > 2) clearInterval(drip)
    else if (!socket.destroyed) socket.write('x')
  }, 100)
  await closed
  clearInterval(drip)
  t.match(received, /^HTTP\/1\.1 408 /)
})

t.test('a client that never reads: the proxy stops reading the API (backpressure) and closes after the idle timeout', async (t) => {
  const { api, port } = await startProxy(t, { proxy: { idleTimeoutMs: 400, headersTimeoutMs: 400 } })
  const socket = connect(port, '127.0.0.1')
  socket.write(raw('GET /big?bytes=268435456 HTTP/1.1'))
  // Never read: once the socket buffers fill, nothing moves and the connection sits idle.
  socket.pause()
  const closed = new Promise((resolve) => socket.once('close', resolve))
  socket.on('error', () => {})
  await until(() => api.streamsClosedEarly.includes('/big'), 15_000)
  t.pass('the API\'s stream was ended before its 256 MiB were written')
  socket.destroy()
  await closed
})

t.test('connections past the cap are refused when every other one is authenticated; established ones keep working', async (t) => {
  const { port, url, auth } = await startProxy(t, { proxy: { maxConnections: 1 } })
  const { Client } = await import('undici')
  const first = new Client(url)
  t.teardown(() => first.close())
  const ok = await first.request({ path: '/echo', method: 'GET', headers: auth })
  t.equal(ok.statusCode, 200)
  await ok.body.dump()
  const second = await rawExchange(port, raw('GET /echo HTTP/1.1'), 2000)
  t.equal(second, '', 'the second connection was closed unanswered')
  const again = await first.request({ path: '/echo', method: 'GET', headers: auth })
  t.equal(again.statusCode, 200)
  await again.body.dump()
})

t.test('idle connections without the secret cannot lock an authorised caller out of the proxy', async (t) => {
  const { port, url, auth } = await startProxy(t, { proxy: { maxConnections: 8 } })
  // Bounded: 40 sockets that connect and say nothing, five times the cap.
  const idle = await Promise.all(Array.from({ length: 40 }, () => new Promise<ReturnType<typeof connect>>((resolve) => {
    const socket = connect(port, '127.0.0.1', () => resolve(socket))
    socket.on('error', () => {})
  })))
  t.teardown(() => { for (const socket of idle) socket.destroy() })
  const { Client } = await import('undici')
  const client = new Client(url)
  t.teardown(() => client.close())
  const startedAt = performance.now()
  const res = await client.request({ path: '/echo', method: 'GET', headers: auth })
  const tookMs = performance.now() - startedAt
  t.equal(res.statusCode, 200, 'the authorised request went through')
  await res.body.dump()
  t.ok(tookMs < 1000, `answered in ${Math.round(tookMs)} ms while 40 strangers held the slots`)
})

t.test('shutdown: requests in flight get the drain period, then an endless event stream is closed', async (t) => {
  const { api, proxy, url, auth } = await startProxy(t, { proxy: { limits: { drainMs: 200 } } })
  const res = await request(`${url}/sse?events=1000&ms=50`, { headers: auth })
  t.equal(res.statusCode, 200)
  const reading = res.body.text().then(() => 'ended', () => 'cut')
  await proxy.close()
  t.equal(await reading, 'cut')
  await until(() => api.streamsClosedEarly.includes('/sse'))
})
