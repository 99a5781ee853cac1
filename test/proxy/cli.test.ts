import t, { type Test } from 'tap'
import { createServer } from 'node:net'
import { request } from 'undici'
import { FakeApi } from '../fixtures/fake-api.js'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'
import { spawnSidecar, stopOnTeardown } from '../fixtures/spawn-sidecar.js'
import { registerSecret } from '../fixtures/suite-log.js'

const SECRET = 'proxy-cli-sidecar-secret-0123456789abcdef'
registerSecret(SECRET)
const auth = { authorization: `Bearer ${SECRET}` }

async function stands (t: Test) {
  const auth0 = await FakeAuth0.start()
  const api = await FakeApi.start()
  api.accepts = (token) => auth0.issued.includes(token)
  t.teardown(async () => {
    await api.close()
    await auth0.close()
  })
  return { auth0, api }
}

t.test('through the CLI: the proxy forwards with the access token, refuses a missing secret, streams events, and stops with the sidecar', async (t) => {
  const { auth0, api } = await stands(t)
  const sidecar = spawnSidecar({ ...auth0.sidecarEnv(SECRET), TOOLBRIDGE_SIDECAR_PORT: '0', TOOLBRIDGE_PROXY_TARGET: api.origin, TOOLBRIDGE_PROXY_PORT: '0', LOG_LEVEL: 'debug' })
  stopOnTeardown(t, sidecar)
  const listening = await sidecar.waitFor((l) => l.component === 'proxy' && String(l.msg).startsWith('Server listening at'))
  const url = String(listening.msg).slice('Server listening at '.length)
  t.match(await sidecar.waitFor((l) => l.event === 'proxy_listening'), { target: api.origin, audience: 'https://toolbridgeapi.erauner.dev' })
  await sidecar.waitFor((l) => l.event === 'token_refreshed')

  const missing = await request(`${url}/echo`)
  t.equal(missing.statusCode, 401)
  await missing.body.dump()
  t.equal(api.requests.length, 0, 'nothing forwarded without the secret')

  const echo = await request(`${url}/echo/v1/notes?limit=5`, { method: 'POST', headers: { ...auth, 'content-type': 'application/json', 'x-tenant-id': 't-1' }, body: '{"a":1}' })
  t.equal(echo.statusCode, 200)
  t.match(await echo.body.json(), { method: 'POST', url: '/echo/v1/notes?limit=5', body: '{"a":1}', headers: { authorization: `Bearer ${auth0.issued[0]}`, 'x-tenant-id': 't-1' } })

  const sse = await request(`${url}/sse?events=3&ms=30`, { headers: auth })
  t.equal(sse.headers['content-type'], 'text/event-stream')
  t.match(await sse.body.text(), /data: event 1\n\n[^]*data: event 3\n\n$/)

  const cut = await request(`${url}/cut`, { headers: auth })
  await t.rejects(cut.body.text(), 'a body the API cut off is cut off for the caller too')

  t.match(await sidecar.waitFor((l) => l.event === 'proxy_request' && l.method === 'POST'), { level: 'debug', path: '/echo/v1/notes', status: 200 })
  sidecar.child.kill('SIGTERM')
  t.same(await sidecar.exited, { code: 0, signal: null })
  t.ok(sidecar.lines.some((l) => l.event === 'stopped'))
})

t.test('through the CLI: a target with credentials stops start-up, naming the variable and not the password', async (t) => {
  registerSecret('proxy-target-password-9')
  const sidecar = spawnSidecar({ TOOLBRIDGE_JWT_TOKEN: 'static-token-value', TOOLBRIDGE_SIDECAR_SECRET: SECRET, TOOLBRIDGE_PROXY_TARGET: 'https://ops:proxy-target-password-9@api.example.com' })
  const exit = await sidecar.exited
  t.equal(exit.code, 1)
  t.match(sidecar.stderr(), 'invalid configuration: TOOLBRIDGE_PROXY_TARGET: expected')
  t.notMatch(sidecar.stderr(), 'proxy-target-password-9')
})

t.test('through the CLI: a proxy port already taken stops start-up with listen_failed', async (t) => {
  const { auth0, api } = await stands(t)
  const taken = createServer()
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve))
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())))
  const { port } = taken.address() as { port: number }
  const sidecar = spawnSidecar({ ...auth0.sidecarEnv(SECRET), TOOLBRIDGE_SIDECAR_PORT: '0', TOOLBRIDGE_PROXY_TARGET: api.origin, TOOLBRIDGE_PROXY_PORT: String(port) })
  stopOnTeardown(t, sidecar)
  const exit = await sidecar.exited
  t.equal(exit.code, 1)
  t.match(sidecar.lines.find((l) => l.event === 'listen_failed'), { level: 'fatal', msg: `cannot listen on 127.0.0.1 port ${port} (EADDRINUSE)` })
})
