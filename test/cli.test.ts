import { execFile } from 'node:child_process'
import { createPublicKey, generateKeyPairSync, verify } from 'node:crypto'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import t, { type Test } from 'tap'
import { Agent, request } from 'undici'
import { FakeAuth0 } from './fixtures/fake-auth0.js'
import { spawnSidecar, stopOnTeardown, type RunningSidecar } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'

const run = promisify(execFile)
const SECRET = 'cli-test-sidecar-secret-0123456789abcdef'
registerSecret(SECRET)
const dir = mkdtempSync(join(tmpdir(), 'sidecar-cli-'))
const RSA_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
const EC_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
registerSecret(RSA_KEY, EC_KEY)

function secretFile (name: string, content: string): string {
  const path = join(dir, name)
  writeFileSync(path, `${content}\n`)
  return path
}

async function auth0For (t: Test): Promise<FakeAuth0> {
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  return auth0
}

function productionEnv (auth0: FakeAuth0, extra: Record<string, string> = {}): Record<string, string> {
  return {
    TOOLBRIDGE_AUTH0_CLIENT_ID: auth0.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: secretFile(`client-${auth0.port}`, auth0.clientSecret),
    TOOLBRIDGE_AUTH0_TOKEN_URL: auth0.tokenUrl,
    TOOLBRIDGE_SIDECAR_SECRET_FILE: secretFile(`sidecar-${auth0.port}`, SECRET),
    TOOLBRIDGE_SIDECAR_PORT: '0',
    ...extra
  }
}

async function get (url: string, headers: Record<string, string> = {}) {
  const res = await request(url, { headers })
  const text = await res.body.text()
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> }
}

t.test('configuration errors: exit 1 with one line naming the variable, never the secret', async (t) => {
  const cases: Array<[Record<string, string>, RegExp]> = [
    [{ TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'client-secret-never-echoed' }, /TOOLBRIDGE_SIDECAR_SECRET is required/],
    [{ TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'client-secret-never-echoed', TOOLBRIDGE_SIDECAR_SECRET: 'too-short-secret-never-echoed' }, /TOOLBRIDGE_SIDECAR_SECRET: expected a shared secret of at least 32 characters/],
    [{ TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'client-secret-never-echoed', TOOLBRIDGE_SIDECAR_SECRET: SECRET, TOOLBRIDGE_SIDECAR_PORT: 'http' }, /TOOLBRIDGE_SIDECAR_PORT: expected a whole number/],
    [{ TOOLBRIDGE_SIDECAR_SECRET: SECRET }, /TOOLBRIDGE_AUTH0_CLIENT_ID and TOOLBRIDGE_AUTH0_CLIENT_SECRET are required/],
    [{ TOOLBRIDGE_SIDECAR_SECRET: SECRET, TOOLBRIDGE_JWT_TOKEN: `e30.${Buffer.from('{"exp":1e15}').toString('base64url')}.c2ln` }, /TOOLBRIDGE_JWT_TOKEN: the JWT's exp claim \(1000000000000000\) is not a time/],
    [{ TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_AUTH0_CLIENT_SECRET: 'client-secret-never-echoed', TOOLBRIDGE_SIDECAR_SECRET_FILE: secretFile('trailing-space', `${SECRET} `) }, /TOOLBRIDGE_SIDECAR_SECRET_FILE: expected a shared secret/],
    [{ TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: secretFile('second-newline', 'client-secret-never-echoed\n'), TOOLBRIDGE_SIDECAR_SECRET: SECRET }, /TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: the client secret starts or ends with whitespace/],
    [{ TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'private_key_jwt', TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: RSA_KEY, TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'ES256', TOOLBRIDGE_SIDECAR_SECRET: SECRET },
      /TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG=ES256 does not fit TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY: an RSA key \(2048 bits\) signs RS256, RS384 or PS256, not ES256/],
    [{ TOOLBRIDGE_AUTH0_CLIENT_ID: 'cid', TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'private_key_jwt', TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE: secretFile('ec-key', EC_KEY), TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG: 'RS256', TOOLBRIDGE_SIDECAR_SECRET: SECRET },
      /TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_ALG=RS256 does not fit TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE: an EC P-256 key signs ES256, not RS256/]
  ]
  registerSecret('client-secret-never-echoed', 'too-short-secret-never-echoed')
  for (const [env, message] of cases) {
    const sidecar = spawnSidecar(env)
    const exit = await sidecar.exited
    t.equal(exit.code, 1, message.source)
    const lines = sidecar.stderr().trimEnd().split('\n')
    t.equal(lines.length, 1, 'one line')
    t.match(lines[0], /^token-sidecar: invalid configuration: /)
    t.match(lines[0], message)
    t.notMatch(sidecar.stderr(), /never-echoed|cli-test-sidecar-secret|PRIVATE KEY|MII/)
    t.same(sidecar.lines, [], 'nothing half-started')
  }
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

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  t.test(`${signal} under load: in-flight requests finish, exit 0 within 5 s`, async (t) => {
    const auth0 = await auth0For(t)
    const sidecar = spawnSidecar(productionEnv(auth0))
    stopOnTeardown(t, sidecar)
    const port = await sidecar.listening
    await sidecar.waitFor((l) => l.msg === 'Auth0 token refreshed')

    const agent = new Agent({ connections: 16 })
    t.teardown(() => agent.close())
    const statuses = new Map<number, number>()
    let refused = 0
    let stop = false
    const worker = async (): Promise<void> => {
      while (!stop) {
        try {
          const res = await request(`http://127.0.0.1:${port}/token`, { dispatcher: agent, headers: { authorization: `Bearer ${SECRET}` } })
          await res.body.text()
          statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1)
        } catch {
          // Connection refused or closed once the listener is gone: expected after the signal.
          refused++
          if (sidecar.child.exitCode !== null) return
          await new Promise((resolve) => setTimeout(resolve, 5))
        }
      }
    }
    const workers = Array.from({ length: 16 }, worker)
    await new Promise((resolve) => setTimeout(resolve, 300))
    const sentAt = Date.now()
    sidecar.child.kill(signal)
    const exit = await sidecar.exited
    const tookMs = Date.now() - sentAt
    stop = true
    await Promise.all(workers)

    t.equal(exit.code, 0, 'exit code 0')
    t.ok(tookMs < 5000, `exited ${tookMs} ms after ${signal}`)
    t.ok((statuses.get(200) ?? 0) > 50, `${statuses.get(200)} answers before shutdown`)
    t.same([...statuses.keys()], [200], `only 200s, never a 5xx (${refused} refused after close)`)
    t.match(sidecar.lines.find((l) => l.event === 'shutdown'), { signal })
    t.ok(sidecar.lines.some((l) => l.event === 'stopped'), 'logged that it stopped')
  })
}

t.test('shutdown does not wait for a hanging upstream request', async (t) => {
  const auth0 = await auth0For(t)
  auth0.enqueue({ kind: 'hang' })
  const sidecar = spawnSidecar(productionEnv(auth0, { TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: '60' }))
  stopOnTeardown(t, sidecar)
  await sidecar.listening
  await new Promise((resolve) => setTimeout(resolve, 200))
  const sentAt = Date.now()
  sidecar.child.kill('SIGTERM')
  t.equal((await sidecar.exited).code, 0)
  t.ok(Date.now() - sentAt < 5000)
})

interface DevRun { sidecar: RunningSidecar, curl: string, port: number }

async function startDev (t: Test, env: Record<string, string> = {}): Promise<DevRun> {
  const sidecar = spawnSidecar({ TOOLBRIDGE_SIDECAR_PORT: '0', ...env }, ['--dev'], { keepStderrPrivate: true })
  stopOnTeardown(t, sidecar)
  const port = await sidecar.listening
  if (port === undefined) throw new Error(`dev mode did not start: ${sidecar.stderr()}`)
  for (let i = 0; i < 100 && !sidecar.stderr().includes('\n'); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  return { sidecar, curl: sidecar.stderr().trim(), port }
}

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

t.test('--dev with an operator-set secret: the curl line refers to it instead of printing it', async (t) => {
  const { curl } = await startDev(t, { TOOLBRIDGE_SIDECAR_SECRET: SECRET })
  t.notMatch(curl, SECRET)
  t.match(curl, /"Authorization: Bearer \$TOOLBRIDGE_SIDECAR_SECRET"/)
  const { stdout } = await run('sh', ['-c', curl], { env: { PATH: process.env.PATH, TOOLBRIDGE_SIDECAR_SECRET: SECRET } })
  const answer = JSON.parse(stdout) as { access_token: string }
  registerSecret(answer.access_token)
  t.ok(answer.access_token)
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
