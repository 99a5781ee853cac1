import type { AddressInfo } from 'node:net'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { TokenManager } from '../../src/engine/token-manager.js'
import { buildApp } from '../../src/http/app.js'
import { TokenPool } from '../../src/engine/token-pool.js'
import { SidecarSecret } from '../../src/http/sidecar-secret.js'
import { createMetrics } from '../../src/metrics/metrics.js'
import { FakeClock, flush } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'

const SECRET = 'fast-path-sidecar-secret-0123456789abcdef'
const auth = { authorization: `Bearer ${SECRET}` }
registerSecret(SECRET)

async function listening (t: Test, level = 'info') {
  const clock = new FakeClock(Date.now())
  const transport = new FakeTransport()
  const captured = captureLogger(level)
  let source: TokenManager | undefined
  const metrics = createMetrics({ audiences: ['https://api.example'], current: () => source?.current() }, clock)
  source = new TokenManager({ transport, logger: captured.logger, refreshBufferMs: 300_000, clock, timers: clock, random: () => 0, observer: metrics.observer('https://api.example') })
  const app = buildApp({ tokens: new TokenPool([['https://api.example', source]]), secret: new SidecarSecret(SECRET), logger: captured.logger, metrics, clock })
  t.teardown(() => app.close())
  source.start()
  const token = transport.succeed(3600)
  registerSecret(token)
  await flush()
  await app.listen({ host: '127.0.0.1', port: 0 })
  const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  const get = async (path: string, headers: Record<string, string> = auth, method: 'GET' | 'HEAD' = 'GET') => {
    const res = await request(`${base}${path}`, { method, headers })
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() }
  }
  return { app, clock, token, get, metrics, lines: captured.lines }
}

t.test('over a real connection GET /token answers exactly what the Fastify route answers', async (t) => {
  const { app, clock, token, get } = await listening(t)
  await clock.advance(1500)
  const wire = await get('/token')
  const injected = await app.inject({ url: '/token', headers: auth })
  t.equal(wire.status, 200)
  t.equal(wire.body, injected.body, 'the same bytes')
  t.same(JSON.parse(wire.body), { access_token: token, token_type: 'Bearer', expires_in: 3598, expires_at: JSON.parse(wire.body).expires_at })
  for (const name of ['content-type', 'content-length', 'cache-control']) t.equal(wire.headers[name], injected.headers[name], name)
  await clock.advance(1000)
  t.equal(JSON.parse((await get('/token')).body).expires_in, 3597, 'expires_in ticks down: the cached body is rebuilt')
})

t.test('everything but the common case goes to Fastify, with its usual answers', async (t) => {
  const { get } = await listening(t)
  const wrong = await get('/token', { authorization: 'Bearer not-the-secret-0123456789abcdef0123' })
  t.equal(wrong.status, 401)
  t.equal(wrong.headers['www-authenticate'], 'Bearer')
  t.equal((await get('/token', {})).status, 401)
  t.equal((await get('/token?audience=https://other.example')).status, 400)
  t.equal((await get('/token?audience=https://api.example')).status, 200)
  const head = await get('/token', auth, 'HEAD')
  t.equal(head.status, 200)
  t.equal(head.body, '')
  t.equal((await get('/healthz', {})).status, 200)
  t.equal((await get('/nope', {})).status, 404)
})

t.test('both paths are counted in the same metric', async (t) => {
  const { app, get, metrics } = await listening(t)
  await get('/token')
  await get('/token')
  await app.inject({ url: '/token', headers: auth })
  await get('/token', {})
  const text = await metrics.registry.metrics()
  t.match(text, /tokensidecar_token_responses_total\{route="\/token",code="200"\} 3/)
  t.match(text, /tokensidecar_token_responses_total\{route="\/token",code="401"\} 1/)
})

t.test('with access logs on (debug), every request goes through Fastify and is logged', async (t) => {
  const { get, lines } = await listening(t, 'debug')
  t.equal((await get('/token')).status, 200)
  t.ok(lines().some((l) => l.msg === 'request completed'), 'an access log line')
})
