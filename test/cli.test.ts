// The real CLI, spawned: the paths through cli.ts and serve.ts that only a
// process has (exit codes, signals, the listening socket, dual stack, static
// mode's warnings, dev mode). The rest of the CLI's contract (every
// configuration error, SIGINT, a hanging upstream at shutdown, dev mode with an
// operator's secret) is in cli.e2e.ts.
import { createPublicKey, verify } from 'node:crypto'
import { execFile } from 'node:child_process'
import { createServer } from 'node:net'
import { promisify } from 'node:util'
import t from 'tap'
import { auth0For, expectConfigError, get, productionEnv, SECRET, secretFile, shutdownUnderLoad, startDev } from './fixtures/cli-env.js'
import { spawnSidecar, stopOnTeardown } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'

const run = promisify(execFile)

t.test('a configuration error: exit 1 with one line naming the variable, never the secret', async (t) => {
  registerSecret('client-secret-never-echoed')
  await expectConfigError(t, { TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'client-secret-never-echoed' }, /TOOLBRIDGE_SIDECAR_SECRET is required/)
})

t.test('usage: --help, --version, unknown arguments', async (t) => {
  const help = spawnSidecar({}, ['--help'])
  t.equal((await help.exited).code, 0)
  const version = spawnSidecar({}, ['--version'])
  t.equal((await version.exited).code, 0)
  const unknown = spawnSidecar({}, ['--prod'])
  t.equal((await unknown.exited).code, 2)
  t.match(unknown.stderr(), /unknown argument "--prod"[\s\S]*usage: token-sidecar/)
})

t.test('production mode from _FILE settings serves tokens over HTTP', async (t) => {
  const auth0 = await auth0For(t)
  const sidecar = spawnSidecar(productionEnv(auth0))
  stopOnTeardown(t, sidecar)
  const port = await sidecar.listening
  t.ok(port, `listening on ${port}`)
  await sidecar.waitFor((l) => l.msg === 'Auth0 token refreshed')
  const init = sidecar.lines.find((l) => l.msg === 'Auth0 token manager initialized')
  t.match(init, { level: 'info', client_id: auth0.clientId, audience: auth0.audience, refresh_buffer_seconds: 300 })

  const res = await get(`http://127.0.0.1:${port}/token`, { authorization: `Bearer ${SECRET}` })
  t.equal(res.status, 200)
  t.equal(res.json().access_token, auth0.issued[0])
  t.equal((await get(`http://127.0.0.1:${port}/healthz`)).status, 200)
  t.equal((await get(`http://127.0.0.1:${port}/token`)).status, 401)
  t.equal(auth0.tokenRequests(), 1)
  t.equal(sidecar.stderr(), '', 'no warnings at start-up')
})

t.test('TOOLBRIDGE_SIDECAR_HOST=:: serves IPv6 and IPv4 loopback alike (dual stack, as on Fly)', async (t) => {
  const auth0 = await auth0For(t)
  const sidecar = spawnSidecar(productionEnv(auth0, { TOOLBRIDGE_SIDECAR_HOST: '::' }))
  stopOnTeardown(t, sidecar)
  const port = await sidecar.listening
  await sidecar.waitFor((l) => l.msg === 'Auth0 token refreshed')
  for (const host of ['[::1]', '127.0.0.1']) {
    const res = await get(`http://${host}:${port}/token`, { authorization: `Bearer ${SECRET}` })
    t.equal(res.status, 200, host)
  }
})

t.test('a wrong client secret fails the health check (the deploy gate)', async (t) => {
  const auth0 = await auth0For(t)
  const sidecar = spawnSidecar(productionEnv(auth0, { TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: secretFile('wrong', 'not-the-client-secret') }))
  stopOnTeardown(t, sidecar)
  const port = await sidecar.listening
  const failed = await sidecar.waitFor((l) => l.event === 'token_refresh_failed')
  t.match(failed, { level: 'error', error: 'access_denied', status: 401 })
  const health = await get(`http://127.0.0.1:${port}/healthz`)
  t.equal(health.status, 503)
  t.match(health.json(), { status: 'unavailable', last_refresh: { error: 'access_denied' } })
})

t.test('static mode and the warnings around it', async (t) => {
  const auth0 = await auth0For(t)
  registerSecret('legacy-static-token-value')
  const both = spawnSidecar(productionEnv(auth0, { TOOLBRIDGE_JWT_TOKEN: 'legacy-static-token-value' }))
  stopOnTeardown(t, both)
  t.match(await both.waitFor((l) => l.event === 'static_token_ignored'), { level: 'warn', msg: /TOOLBRIDGE_JWT_TOKEN is ignored/ })

  const legacy = spawnSidecar({ TOOLBRIDGE_JWT_TOKEN: 'legacy-static-token-value', TOOLBRIDGE_SIDECAR_SECRET: SECRET, TOOLBRIDGE_SIDECAR_PORT: '0' })
  stopOnTeardown(t, legacy)
  const port = await legacy.listening
  t.match(await legacy.waitFor((l) => l.event === 'static_token_deprecated'), { level: 'warn', msg: /deprecated/ })
  const res = await get(`http://127.0.0.1:${port}/token`, { authorization: `Bearer ${SECRET}` })
  t.same(res.json(), { access_token: 'legacy-static-token-value', token_type: 'Bearer', expires_in: null, expires_at: null })
})

t.test('a port already in use: exit 1 with a clear log line', async (t) => {
  const auth0 = await auth0For(t)
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  const sidecar = spawnSidecar(productionEnv(auth0, { TOOLBRIDGE_SIDECAR_PORT: String(port) }))
  t.equal((await sidecar.exited).code, 1)
  t.match(sidecar.lines.find((l) => l.event === 'listen_failed'), { level: 'fatal', msg: new RegExp(`cannot listen on 127.0.0.1 port ${port} \\(EADDRINUSE\\)`) })
})


t.test('SIGTERM under load: in-flight requests finish, exit 0 within 5 s', async (t) => {
  await shutdownUnderLoad(t, 'SIGTERM')
})

t.test('--dev: a loud warning, one curl line that returns an RS256 JWT from the embedded issuer', async (t) => {
  const { sidecar, curl, port } = await startDev(t)
  t.match(sidecar.lines.find((l) => l.event === 'dev_mode'), { level: 'warn', msg: /NOT FOR PRODUCTION/ })
  t.equal(curl.split('\n').length, 1, 'one line')
  t.match(curl, new RegExp(`^curl -sS -H 'Authorization: Bearer [0-9a-f]{64}' http://127\\.0\\.0\\.1:${port}/token$`))
  const generated = /Bearer ([0-9a-f]{64})/.exec(curl)![1]!
  registerSecret(generated)

  const { stdout } = await run('sh', ['-c', curl])
  const answer = JSON.parse(stdout) as { access_token: string, expires_in: number, token_type: string }
  registerSecret(answer.access_token)
  t.equal(answer.token_type, 'Bearer')
  t.ok(answer.expires_in > 100 && answer.expires_in <= 120, `about two minutes: ${answer.expires_in}`)

  const [header, payload, signature] = answer.access_token.split('.') as [string, string, string]
  const claims = JSON.parse(Buffer.from(payload, 'base64url').toString()) as Record<string, unknown>
  t.match(JSON.parse(Buffer.from(header, 'base64url').toString()), { alg: 'RS256', typ: 'JWT' })
  t.match(claims, { sub: 'token-sidecar-dev@clients', aud: 'https://toolbridgeapi.erauner.dev', gty: 'client-credentials', iss: /^http:\/\/127\.0\.0\.1:\d+\/$/ })
  t.equal((claims.exp as number) - (claims.iat as number), 120)
  const jwks = (await get(`${claims.iss as string}.well-known/jwks.json`)).json() as { keys: Array<Record<string, unknown>> }
  const key = createPublicKey({ key: jwks.keys[0]! as unknown as import('node:crypto').JsonWebKey, format: 'jwk' })
  t.ok(verify('sha256', Buffer.from(`${header}.${payload}`), key, Buffer.from(signature, 'base64url')), 'signature verifies against the issuer\'s JWKS')

  t.notMatch(JSON.stringify(sidecar.lines), generated, 'the generated secret is not in the log')
  t.notMatch(JSON.stringify(sidecar.lines), answer.access_token)
})

t.test('--dev with a bad setting or a busy port exits instead of hanging on its issuer', async (t) => {
  const bad = spawnSidecar({ TOOLBRIDGE_SIDECAR_PORT: 'x' }, ['--dev'])
  t.equal((await bad.exited).code, 1)
  t.match(bad.stderr(), /TOOLBRIDGE_SIDECAR_PORT: expected/)
  const blocker = createServer()
  await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
  t.teardown(() => blocker.close())
  const busy = spawnSidecar({ TOOLBRIDGE_SIDECAR_PORT: String((blocker.address() as { port: number }).port) }, ['--dev'], { keepStderrPrivate: true })
  t.equal((await busy.exited).code, 1)
  t.ok(busy.lines.some((l) => l.event === 'listen_failed'))
})

t.test('--dev refuses a non-loopback host', async (t) => {
  for (const host of ['0.0.0.0', '::']) {
    const sidecar = spawnSidecar({ TOOLBRIDGE_SIDECAR_HOST: host }, ['--dev'])
    t.equal((await sidecar.exited).code, 1)
    t.match(sidecar.stderr(), new RegExp(`--dev refuses TOOLBRIDGE_SIDECAR_HOST=${host.replace(/\./g, '\\.')}: dev mode only listens on a loopback address`))
  }
})
