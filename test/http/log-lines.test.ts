import { Writable } from 'node:stream'
import t, { type Test } from 'tap'
import { loadConfig } from '../../src/config/load-config.js'
import { TokenManager } from '../../src/engine/token-manager.js'
import { TokenPool } from '../../src/engine/token-pool.js'
import { buildApp } from '../../src/http/app.js'
import { SidecarSecret } from '../../src/http/sidecar-secret.js'
import { createLogger } from '../../src/logger.js'
import { createSidecar } from '../../src/sidecar.js'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'
import { FakeClock, flush, until } from '../fixtures/fake-clock.js'
import { FakeTransport } from '../fixtures/fake-transport.js'
import { captureLogger, recordOutput, registerSecret } from '../fixtures/suite-log.js'

const SECRET = 'log-lines-sidecar-secret-0123456789abcdef'
registerSecret(SECRET)
const AUTH = { authorization: `Bearer ${SECRET}` }

async function app (t: Test, level: string) {
  const clock = new FakeClock()
  const transport = new FakeTransport()
  const captured = captureLogger(level)
  const source = new TokenManager({ transport, logger: captured.logger, refreshBufferMs: 300_000, clock, timers: clock, random: () => 0 })
  const built = buildApp({ tokens: new TokenPool([['https://api.example', source]]), secret: new SidecarSecret(SECRET), logger: captured.logger, clock })
  t.teardown(() => built.close())
  source.start()
  registerSecret(transport.succeed(3600))
  await flush()
  return { app: built, lines: captured.lines }
}

t.test('access logs (debug) never carry a query string\'s values: a secret put there stays out', async (t) => {
  const { app: built, lines } = await app(t, 'debug')
  await built.inject({ url: `/token?access_token=${SECRET}&audience=https%3A%2F%2Fapi.example`, headers: AUTH })
  await built.inject({ url: `/nope?token=${SECRET}` })
  await built.inject({ url: '/healthz' })
  const incoming = lines().filter((l) => l.msg === 'incoming request').map((l) => (l.req as { url: string }).url)
  t.same(incoming, ['/token?access_token=[redacted]&audience=[redacted]', '/nope?token=[redacted]', '/healthz'], 'the path and the query\'s names only')
  t.equal(lines().filter((l) => l.msg === 'request completed').length, 3)
  t.notOk(JSON.stringify(lines()).includes(SECRET), 'the secret is in no line')
  t.notOk(JSON.stringify(lines()).includes(encodeURIComponent(SECRET)), 'nor encoded')
})

t.test('at info Fastify has no logger: no access lines, but the app\'s own lines still come, with the request id', async (t) => {
  const { app: built, lines } = await app(t, 'info')
  t.notOk('bindings' in built.log, 'Fastify\'s own logger is its silent stand-in, not pino')
  await built.inject({ url: '/token', headers: AUTH })
  await built.inject({ url: '/token' })
  t.notOk(lines().some((l) => l.msg === 'incoming request' || l.msg === 'request completed'), 'no access log')
  t.match(lines().find((l) => l.event === 'auth_rejected'), { level: 'warn', reqId: String, reason: 'missing_credentials' }, 'a rejection is logged with its request id')
  await built.listen({ host: '::1', port: 0 })
  const { port } = built.server.address() as { port: number }
  t.same(lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at')).map((l) => l.msg), [`Server listening at http://[::1]:${port}`], 'the listening line, once, as Fastify writes it')
})

t.test('with access logs on, Fastify itself writes the listening line, once', async (t) => {
  const { app: built, lines } = await app(t, 'debug')
  await built.listen({ host: '127.0.0.1', port: 0 })
  const { port } = built.server.address() as { port: number }
  t.same(lines().filter((l) => typeof l.msg === 'string' && l.msg.startsWith('Server listening at')).map((l) => l.msg), [`Server listening at http://127.0.0.1:${port}`])
})

t.test('the engine\'s lines name their audience once', async (t) => {
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  let text = ''
  const sink = new Writable({
    write (chunk: Buffer, _encoding, callback) {
      text += chunk.toString('utf8')
      recordOutput(chunk.toString('utf8'))
      callback()
    }
  })
  const clock = new FakeClock(Date.now())
  const { app: built, tokens } = createSidecar(loadConfig(auth0.sidecarEnv(SECRET)), createLogger('info', sink), { clock, timers: clock, random: () => 0 })
  t.teardown(() => built.close())
  tokens.start()
  await until(() => text.includes('"event":"token_refreshed"'))
  const engine = text.split('\n').filter((line) => line.includes('"component":"token-engine"'))
  t.ok(engine.some((line) => line.includes('"event":"token_manager_initialized"')), 'the start-up line is among them')
  for (const line of engine) t.equal(line.split('"audience":').length - 1, 1, line.slice(0, 120))
})
