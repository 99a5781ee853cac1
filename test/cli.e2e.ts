// The rest of the real CLI's contract (test/cli.test.ts has the paths only
// a process has): every configuration error, SIGINT, shutdown against a
// hanging upstream, dev mode with an operator's secret.
import { generateKeyPairSync } from 'node:crypto'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import t from 'tap'
import { auth0For, expectConfigError, productionEnv, SECRET, secretFile, shutdownUnderLoad, startDev } from './fixtures/cli-env.js'
import { spawnSidecar, stopOnTeardown } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'

const run = promisify(execFile)
const RSA_KEY = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
const EC_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string
registerSecret(RSA_KEY, EC_KEY)

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
  for (const [env, message] of cases) await expectConfigError(t, env, message)
})

t.test('SIGINT under load: in-flight requests finish, exit 0 within 5 s', async (t) => {
  await shutdownUnderLoad(t, 'SIGINT')
})

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


t.test('--dev with an operator-set secret: the curl line refers to it instead of printing it', async (t) => {
  const { curl } = await startDev(t, { TOOLBRIDGE_SIDECAR_SECRET: SECRET })
  t.notMatch(curl, SECRET)
  t.match(curl, /"Authorization: Bearer \$TOOLBRIDGE_SIDECAR_SECRET"/)
  const { stdout } = await run('sh', ['-c', curl], { env: { PATH: process.env.PATH, TOOLBRIDGE_SIDECAR_SECRET: SECRET } })
  const answer = JSON.parse(stdout) as { access_token: string }
  registerSecret(answer.access_token)
  t.ok(answer.access_token)
})
