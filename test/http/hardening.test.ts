import { createHash } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { TokenManager } from '../../src/engine/token-manager.js'
import { buildApp, SERVER_LIMITS, type ServerLimits } from '../../src/http/app.js'
import { TokenPool } from '../../src/engine/token-pool.js'
import { clientErrorHandler } from '../../src/http/client-error.js'
import { SidecarSecret } from '../../src/http/sidecar-secret.js'
import { createMetrics } from '../../src/metrics/metrics.js'
import { FakeClock, flush, until } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'

const SECRET = 'hardening-sidecar-secret-0123456789abcdef'
const auth = { authorization: `Bearer ${SECRET}` }
registerSecret(SECRET)
const sha256 = (value: string): string => createHash('sha256').update(value).digest('hex')

async function setup (t: Test, opts: { level?: string, maxConnections?: number, limits?: Partial<ServerLimits> } = {}) {
  const clock = new FakeClock()
  const transport = new FakeTransport()
  const captured = captureLogger(opts.level ?? 'info')
  let source: TokenManager | undefined
  const metrics = createMetrics({ audiences: ['https://api.example'], current: () => source?.current() }, clock)
  source = new TokenManager({ transport, logger: captured.logger, refreshBufferMs: 300_000, clock, timers: clock, random: () => 0, observer: metrics.observer('https://api.example') })
  const app = buildApp({
    tokens: new TokenPool([['https://api.example', source]]),
    secret: new SidecarSecret(SECRET),
    logger: captured.logger,
    metrics,
    clock,
    ...(opts.maxConnections === undefined ? {} : { maxConnections: opts.maxConnections }),
    ...(opts.limits === undefined ? {} : { limits: opts.limits })
  })
  t.teardown(() => app.close())
  source.start()
  const token = transport.succeed(3600)
  registerSecret(token)
  await flush()
  const refresh = (headers: Record<string, string>, payload?: string) =>
    app.inject({ method: 'POST', url: '/token/refresh', headers: { ...auth, ...headers }, ...(payload === undefined ? {} : { payload }) })
  return { app, clock, transport, source, token, refresh, lines: captured.lines, metrics }
}

async function fetched (transport: FakeTransport): Promise<string> {
  await until(() => transport.open > 0, 2000)
  const token = transport.succeed(3600)
  registerSecret(token)
  return token
}

t.test('POST /token/refresh with the hash of an older token: the current token, no fetch', async (t) => {
  const { clock, transport, token, refresh, metrics } = await setup(t)
  await clock.advance(60_000)
  for (const [headers, payload] of [
    [{ 'content-type': 'application/json' }, JSON.stringify({ rejected_token_sha256: sha256('an-older-token') })],
    [{ 'content-type': 'application/json; charset=utf-8' }, JSON.stringify({ rejected_token_sha256: sha256('an-older-token'), other: [1, 2] })],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, `rejected_token_sha256=${sha256('another-token')}&x=1`]
  ] as const) {
    const res = await refresh(headers, payload)
    t.equal(res.statusCode, 200)
    t.equal(res.json().access_token, token)
  }
  t.equal(transport.open, 0, 'nothing fetched')
  t.match(await metrics.registry.metrics(), /tokensidecar_forced_refresh_refused_total\{audience="https:\/\/api\.example",reason="not_current"\} 3/)
})

t.test('POST /token/refresh with the current token\'s hash, as JSON or a form: a fetch', async (t) => {
  const { clock, transport, token, refresh } = await setup(t)
  await clock.advance(60_000)
  const pending = refresh({ 'content-type': 'application/json' }, JSON.stringify({ rejected_token_sha256: sha256(token) }))
  const fresh = await fetched(transport)
  t.equal((await pending).json().access_token, fresh)
  await clock.advance(20_000)
  const form = refresh({ 'content-type': 'application/x-www-form-urlencoded' }, `rejected_token_sha256=${sha256(fresh).toUpperCase()}`)
  const third = await fetched(transport)
  t.equal((await form).json().access_token, third)
})

t.test('POST /token/refresh bodies: malformed is 400 invalid_request, odd ones are ignored, big ones 413', async (t) => {
  const { clock, transport, token, refresh } = await setup(t)
  const bad: Array<[Record<string, string>, string]> = [
    [{ 'content-type': 'application/json' }, '{not json'],
    [{ 'content-type': 'application/json' }, '[]'],
    [{ 'content-type': 'application/json' }, 'null'],
    [{ 'content-type': 'application/json' }, '"abc"'],
    [{ 'content-type': 'application/json' }, JSON.stringify({ rejected_token_sha256: 'not-hex' })],
    [{ 'content-type': 'application/json' }, JSON.stringify({ rejected_token_sha256: 42 })],
    [{ 'content-type': 'application/json' }, JSON.stringify({ rejected_token_sha256: sha256(token).slice(1) })],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, 'rejected_token_sha256=zz']
  ]
  for (const [headers, payload] of bad) {
    const res = await refresh(headers, payload)
    t.equal(res.statusCode, 400, payload)
    t.equal(res.json().error, 'invalid_request')
    t.equal(res.headers['cache-control'], 'no-store')
  }
  const ignored: Array<[Record<string, string>, string]> = [
    [{ 'content-type': 'application/json' }, ''],
    [{ 'content-type': 'application/json' }, '{}'],
    [{ 'content-type': 'application/x-www-form-urlencoded' }, ''],
    [{ 'content-type': 'text/plain' }, 'rejected_token_sha256=whatever'],
    [{}, '']
  ]
  for (const [headers, payload] of ignored) {
    const res = await refresh(headers, payload)
    t.equal(res.statusCode, 200, `${JSON.stringify(headers)} ${payload}`)
    t.equal(res.json().access_token, token, 'too young to refresh: the same token')
  }
  const big = await refresh({ 'content-type': 'application/json' }, JSON.stringify({ rejected_token_sha256: sha256(token), pad: 'x'.repeat(5000) }))
  t.equal(big.statusCode, 413)
  await clock.advance(60_000)
  t.equal(transport.open, 0, 'none of these fetched')
})

t.test('the forced-refresh spacing holds through the HTTP API, and is counted', async (t) => {
  const { clock, transport, refresh, metrics } = await setup(t)
  await clock.advance(10_000)
  const first = refresh({})
  await fetched(transport)
  await first
  for (let i = 0; i < 50; i++) {
    await clock.advance(100)
    t.equal((await refresh({})).statusCode, 200)
  }
  t.equal(transport.open, 0, '5 s of hammering: no fetch')
  t.match(await metrics.registry.metrics(), /tokensidecar_forced_refresh_refused_total\{audience="https:\/\/api\.example",reason="too_soon"\} 50/)
})

/** Sends raw bytes and resolves with what the server answered before closing. */
function raw (port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let answer = ''
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => { answer += chunk })
    socket.on('error', reject)
    socket.on('close', () => resolve(answer))
    socket.write(bytes)
  })
}

t.test('a malformed request at trace level: the raw packet (and the secret in it) is never logged', async (t) => {
  const { app, lines } = await setup(t, { level: 'trace' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const answer = await raw(port, `GET /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nBad Header\r\n\r\n`)
  t.match(answer, /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.match(answer, /\{"error":"Bad Request","message":"Client Error","statusCode":400\}$/)
  await until(() => lines().some((l) => l.event === 'client_error'))
  const logged = lines().find((l) => l.event === 'client_error')
  t.match(logged, { level: 'debug', code: 'HPE_INVALID_HEADER_TOKEN' })
  const text = JSON.stringify(lines())
  t.notOk(text.includes('rawPacket'), 'no raw packet')
  t.notOk(text.includes(SECRET), 'no secret')
  t.notOk(text.includes(JSON.stringify([...Buffer.from(SECRET)]).slice(1, -1)), 'not as bytes either')
  const big = await raw(port, `GET /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`)
  t.match(big, /^HTTP\/1\.1 431 /)
})

t.test('the logger redacts a raw packet wherever a future log call puts it', async (t) => {
  const captured = captureLogger()
  captured.logger.warn({ err: { rawPacket: Buffer.from(`Bearer ${SECRET}`), code: 'X' } }, 'x')
  captured.logger.warn({ rawPacket: Buffer.from(`Bearer ${SECRET}`) }, 'y')
  t.equal(captured.lines().length, 2, 'both lines were written')
  t.notOk(JSON.stringify(captured.lines()).includes('66,101,97,114'), 'no bytes of "Bear…"')
  t.match(captured.lines(), [{ err: { rawPacket: '[redacted]' } }, { rawPacket: '[redacted]' }])
})

t.test('server limits are app options, applied to the server (SERVER_LIMITS by default)', async (t) => {
  const { app } = await setup(t)
  t.equal(app.server.headersTimeout, SERVER_LIMITS.headersTimeoutMs)
  t.equal(app.server.requestTimeout, SERVER_LIMITS.requestTimeoutMs)
  t.equal(app.server.keepAliveTimeout, SERVER_LIMITS.keepAliveTimeoutMs)
  const custom = await setup(t, { limits: { headersTimeoutMs: 300, requestTimeoutMs: 400, keepAliveTimeoutMs: 500, bodyLimitBytes: 64 } })
  t.equal(custom.app.server.headersTimeout, 300)
  t.equal(custom.app.server.requestTimeout, 400)
  t.equal(custom.app.server.keepAliveTimeout, 500)
  const big = await custom.refresh({ 'content-type': 'application/json' }, JSON.stringify({ pad: 'x'.repeat(100) }))
  t.equal(big.statusCode, 413, 'the body limit too')
})

t.test('a slow-header client is answered 408 and closed once the header limit passes', async (t) => {
  const limits = { headersTimeoutMs: 300, requestTimeoutMs: 300, connectionsCheckingIntervalMs: 50 }
  const { app } = await setup(t, { limits })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  let answer = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { answer += chunk })
  // A write racing the server's close would be answered with a reset; the answer is what counts here.
  socket.on('error', () => {})
  socket.write('GET /token HTTP/1.1\r\nHost: x\r\n')
  const started = performance.now()
  // A header line now and then, never the blank line that ends them; the last well before
  // the limit, so none is in flight when it closes the connection (a reset could drop the 408).
  let drips = 0
  const drip = setInterval(() => { if (++drips <= 2 && !socket.destroyed) socket.write('X-Slow: 1\r\n') }, 80)
  await new Promise((resolve) => socket.on('close', resolve))
  clearInterval(drip)
  const elapsed = performance.now() - started
  t.ok(elapsed >= limits.headersTimeoutMs - 20, `not before the limit: closed after ${Math.round(elapsed)} ms`)
  t.match(answer, /^HTTP\/1\.1 408 /)
})

t.test('past TOOLBRIDGE_SIDECAR_MAX_CONNECTIONS, with every connection authenticated, a new one is refused; established ones keep working', async (t) => {
  const { app } = await setup(t, { maxConnections: 2 })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const open = async (): Promise<Socket> => {
    const socket = connect(port, '127.0.0.1')
    await new Promise((resolve) => socket.once('connect', resolve))
    t.teardown(() => { socket.destroy() })
    return socket
  }
  const ask = (socket: Socket): Promise<string> => new Promise((resolve) => {
    let answer = ''
    const onData = (chunk: Buffer): void => {
      answer += chunk.toString('utf8')
      if (/\r\n\r\n[\s\S]*\}$/.test(answer)) {
        socket.off('data', onData)
        resolve(answer)
      }
    }
    socket.on('data', onData)
    socket.once('close', () => resolve(answer))
    socket.write(`GET /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\n\r\n`)
  })
  const [a, b] = [await open(), await open()]
  t.match(await ask(a), /^HTTP\/1\.1 200 /)
  t.match(await ask(b), /^HTTP\/1\.1 200 /)
  const third = await open()
  const refused = await ask(third)
  t.equal(refused, '', 'the third connection is closed without an answer')
  t.match(await ask(b), /^HTTP\/1\.1 200 /, 'an established connection still works')
  t.match(await ask(a), /^HTTP\/1\.1 200 /, 'and keeps working')
})

/** Everything the server wrote on a connection until it closed it. */
function received (socket: Socket): Promise<string> {
  let text = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
  socket.on('error', () => {})
  return new Promise((resolve) => socket.once('close', () => resolve(text)))
}

t.test('a GET whose declared body never completes: answered once, then closed without a second (408) answer', async (t) => {
  const { app, token } = await setup(t, { limits: { requestTimeoutMs: 300, headersTimeoutMs: 300, connectionsCheckingIntervalMs: 50 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  const text = received(socket)
  socket.write(`GET /token HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nContent-Length: 10\r\n\r\nabcde`)
  const answer = await text
  t.match(answer, /^HTTP\/1\.1 200 OK\r\n/)
  t.ok(answer.includes(token), 'the token was served')
  t.equal(answer.match(/HTTP\/1\.1 /g)?.length, 1, 'exactly one answer on the connection')
})

t.test('a request timeout still answers 408 when nothing was answered: a POST whose body never completes', async (t) => {
  const { app } = await setup(t, { limits: { requestTimeoutMs: 300, headersTimeoutMs: 300, connectionsCheckingIntervalMs: 50 } })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  const text = received(socket)
  socket.write(`POST /token/refresh HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${SECRET}\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n{"a"`)
  t.match(await text, /^HTTP\/1\.1 408 Request Timeout\r\n[\s\S]*"statusCode":408\}$/)
})

t.test('after a complete exchange, a malformed next request on the same connection is answered 400', async (t) => {
  const { app } = await setup(t)
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const socket = connect(port, '127.0.0.1')
  const text = received(socket)
  socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
  await new Promise((resolve) => socket.once('data', resolve))
  // Let the first response finish before the bad request arrives.
  await new Promise((resolve) => setImmediate(resolve))
  socket.write('GET /healthz HTTP/1.1\r\nBad Header\r\n\r\n')
  const answer = await text
  t.match(answer, /^HTTP\/1\.1 200 OK\r\n/)
  t.match(answer, /HTTP\/1\.1 400 Bad Request\r\n[\s\S]*"statusCode":400\}$/)
})

t.test('client errors without a code are answered 400; a gone socket is left alone', async (t) => {
  const captured = captureLogger('debug')
  const written: string[] = []
  let destroyed = 0
  const socket = { destroyed: false, writable: true, write: (s: string) => written.push(s), destroy: () => { destroyed++ } }
  const handler = clientErrorHandler(captured.logger)
  handler(new Error('odd'), socket as unknown as Socket)
  t.match(written[0], /^HTTP\/1\.1 400 Bad Request\r\n/)
  t.equal(destroyed, 1)
  t.match(captured.lines(), [{ event: 'client_error', code: null }])
  handler(Object.assign(new Error('reset'), { code: 'ECONNRESET' }), socket as unknown as Socket)
  handler(new Error('late'), { ...socket, destroyed: true } as unknown as Socket)
  t.equal(written.length, 1, 'nothing written to a reset or destroyed socket')
  handler(Object.assign(new Error('timeout'), { code: 'ERR_HTTP_REQUEST_TIMEOUT' }), { ...socket, writable: false } as unknown as Socket)
  t.equal(written.length, 1, 'nothing written to a socket that cannot take it')
  t.equal(destroyed, 2, 'but it is closed')
})
