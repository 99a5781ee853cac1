import { createServer } from 'node:http'
import t from 'tap'
import { probeHost } from '../src/healthcheck.js'
import { FakeAuth0 } from './fixtures/fake-auth0.js'
import { spawnSidecar } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'

const SECRET = 'healthcheck-sidecar-secret-0123456789abcdef'
registerSecret(SECRET)

async function probe (env: Record<string, string>) {
  const run = spawnSidecar(env, ['healthcheck'])
  const started = Date.now()
  const exit = await run.exited
  return { code: exit.code, out: run.lines.map((l) => l.raw).join('\n'), ms: Date.now() - started }
}

t.test('healthy sidecar: exit 0; unhealthy (wrong client secret): exit 1', async (t) => {
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  for (const [clientSecret, expected, status] of [[auth0.clientSecret, 0, '200 ok'], ['wrong-client-secret', 1, '503 unavailable']] as const) {
    registerSecret(clientSecret)
    const sidecar = spawnSidecar({
      TOOLBRIDGE_AUTH0_CLIENT_ID: auth0.clientId,
      TOOLBRIDGE_AUTH0_CLIENT_SECRET: clientSecret,
      TOOLBRIDGE_AUTH0_TOKEN_URL: auth0.tokenUrl,
      TOOLBRIDGE_SIDECAR_SECRET: SECRET,
      TOOLBRIDGE_SIDECAR_HOST: '::',
      TOOLBRIDGE_SIDECAR_PORT: '0'
    })
    t.teardown(async () => {
      sidecar.child.kill('SIGTERM')
      await sidecar.exited
    })
    const port = await sidecar.listening
    await sidecar.waitFor((l) => l.event === 'token_refreshed' || l.event === 'token_refresh_failed')
    // The probe needs only the listen address: no secrets in its environment.
    const result = await probe({ TOOLBRIDGE_SIDECAR_HOST: '::', TOOLBRIDGE_SIDECAR_PORT: String(port) })
    t.equal(result.code, expected, status)
    t.match(result.out, new RegExp(`http://127\\.0\\.0\\.1:${port}/healthz: ${status}`))
  }
})

t.test('nothing listening: exit 1 quickly', async (t) => {
  const result = await probe({ TOOLBRIDGE_SIDECAR_PORT: '1' })
  t.equal(result.code, 1)
  t.match(result.out, /unreachable \(ECONNREFUSED\)/)
})

t.test('a server that never answers: exit 1 within the 3 s limit', async (t) => {
  const server = createServer(() => {})
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => {
    server.closeAllConnections()
    server.close()
  })
  const result = await probe({ TOOLBRIDGE_SIDECAR_PORT: String((server.address() as { port: number }).port) })
  t.equal(result.code, 1)
  t.ok(result.ms < 5000, `gave up after ${result.ms} ms`)
  t.match(result.out, /unreachable/)
})

t.test('a 200 with a body that is not JSON still counts as healthy', async (t) => {
  const server = createServer((_req, res) => res.end('fine'))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const result = await probe({ TOOLBRIDGE_SIDECAR_HOST: '127.0.0.1', TOOLBRIDGE_SIDECAR_PORT: String((server.address() as { port: number }).port) })
  t.equal(result.code, 0)
  t.match(result.out, /200 unknown/)
})

t.test('the probe names the audiences without a token (the top-level status is the default audience\'s)', async (t) => {
  const server = createServer((_req, res) => {
    res.writeHead(503).end(JSON.stringify({ status: 'ok', unavailable_audiences: ['https://reports.example', 'urn:b'] }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.teardown(() => server.close())
  const result = await probe({ TOOLBRIDGE_SIDECAR_PORT: String((server.address() as { port: number }).port) })
  t.equal(result.code, 1)
  t.match(result.out, /: 503 ok \(no token for: https:\/\/reports\.example, urn:b\)$/)
})

t.test('defaults: 127.0.0.1 port 8787', async (t) => {
  const result = await probe({})
  t.match(result.out, /^http:\/\/127\.0\.0\.1:8787\/healthz: /)
})

t.test('probe hosts', async (t) => {
  t.equal(probeHost('::'), '127.0.0.1')
  t.equal(probeHost('0.0.0.0'), '127.0.0.1')
  t.equal(probeHost('::1'), '[::1]')
  t.equal(probeHost('10.1.2.3'), '10.1.2.3')
})
