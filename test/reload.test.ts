import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { loadConfig } from '../src/config/load-config.js'
import { reloadSecrets } from '../src/config/reload-secrets.js'
import { createSidecar } from '../src/sidecar.js'
import { FakeAuth0 } from './fixtures/fake-auth0.js'
import { until } from './fixtures/fake-clock.js'
import { spawnSidecar } from './fixtures/spawn-sidecar.js'
import { captureLogger, registerSecret } from './fixtures/suite-log.js'

const OLD_SIDECAR = 'reload-old-sidecar-secret-0123456789abcdef'
const NEW_SIDECAR = 'reload-new-sidecar-secret-0123456789abcdef'
registerSecret(OLD_SIDECAR, NEW_SIDECAR)
const dir = mkdtempSync(join(tmpdir(), 'sidecar-reload-'))
let n = 0

function write (path: string, content: string): void {
  writeFileSync(path, content)
}

async function setup (t: Test) {
  const auth0 = await FakeAuth0.start()
  const files = { client: join(dir, `client-${++n}`), sidecar: join(dir, `sidecar-${n}`) }
  write(files.client, `${auth0.clientSecret}\n`)
  write(files.sidecar, `${OLD_SIDECAR}\n`)
  const env = {
    TOOLBRIDGE_AUTH0_CLIENT_ID: auth0.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: files.client,
    TOOLBRIDGE_AUTH0_TOKEN_URL: auth0.tokenUrl,
    TOOLBRIDGE_SIDECAR_SECRET_FILE: files.sidecar
  }
  const captured = captureLogger()
  const sidecar = createSidecar(loadConfig(env), captured.logger, { random: () => 0 })
  t.teardown(async () => {
    await sidecar.app.close()
    await auth0.close()
  })
  sidecar.source.start()
  await until(() => auth0.issued.length === 1)
  await until(() => sidecar.source.current() !== undefined)
  const token = async (secret: string) => sidecar.app.inject({ url: '/token', headers: { authorization: `Bearer ${secret}` } })
  return { auth0, env, files, lines: captured.lines, token, ...sidecar }
}

t.test('a rotated client secret is used at once, and proven with a fresh token', async (t) => {
  const { auth0, env, files, lines, reload, token } = await setup(t)
  const rotated = 'rotated-client-secret-value'
  registerSecret(rotated)
  auth0.clientSecret = rotated
  write(files.client, `${rotated}\n`)
  await reload(env)
  t.equal(auth0.issued.length, 2, 'a new token was fetched')
  t.equal(auth0.requests.at(-1)?.body?.client_secret, rotated, 'with the new secret')
  t.equal((await token(OLD_SIDECAR)).json().access_token, auth0.issued[1])
  t.match(lines().find((l) => l.event === 'config_reloaded'), { level: 'info', changed: ['TOOLBRIDGE_AUTH0_CLIENT_SECRET'], unchanged: ['TOOLBRIDGE_SIDECAR_SECRET'], rejected: [] })
})

t.test('a rotated client secret that Auth0 rejects: the current token stays in service', async (t) => {
  const { auth0, env, files, lines, reload, token } = await setup(t)
  write(files.client, 'a-secret-auth0-does-not-know\n')
  registerSecret('a-secret-auth0-does-not-know')
  await reload(env)
  t.equal(auth0.tokenRequests(), 2)
  t.match(lines().find((l) => l.event === 'token_refresh_failed'), { error: 'access_denied', trigger: 'forced' })
  const res = await token(OLD_SIDECAR)
  t.equal(res.statusCode, 200)
  t.equal(res.json().access_token, auth0.issued[0])
})

t.test('a rotated sidecar secret applies to the next request', async (t) => {
  const { auth0, env, files, reload, token } = await setup(t)
  write(files.sidecar, `${NEW_SIDECAR}\n`)
  await reload(env)
  t.equal((await token(OLD_SIDECAR)).statusCode, 401)
  t.equal((await token(NEW_SIDECAR)).statusCode, 200)
  t.equal(auth0.tokenRequests(), 1, 'no token request for a sidecar secret change')
})

t.test('invalid files are rejected and the old values stay in force', async (t) => {
  const { auth0, env, files, lines, reload, token } = await setup(t)
  const cases: Array<[() => void, string, RegExp]> = [
    [() => write(files.sidecar, '\n'), 'TOOLBRIDGE_SIDECAR_SECRET_FILE', /is empty/],
    [() => write(files.sidecar, 'short-new-secret\n'), 'TOOLBRIDGE_SIDECAR_SECRET_FILE', /at least 32 characters/],
    [() => write(files.client, ''), 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', /is empty/],
    // Root reads any file, so unreadable here means a directory where the file was.
    [() => { rmSync(files.client); mkdirSync(files.client) }, 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', /cannot read .* \(not a regular file\)/],
    [() => { rmSync(files.client, { recursive: true }); execFileSync('mkfifo', [files.client]) }, 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', /cannot read .* \(not a regular file\)/],
    [() => write(files.sidecar, `${NEW_SIDECAR}\n\n`), 'TOOLBRIDGE_SIDECAR_SECRET_FILE', /letters, digits/],
    [() => write(files.sidecar, `${NEW_SIDECAR} \n`), 'TOOLBRIDGE_SIDECAR_SECRET_FILE', /letters, digits/],
    [() => { rmSync(files.client); write(files.client, 'rotated-with-a-trailing-space \n') }, 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', /whitespace/],
    [() => write(files.client, 'x'.repeat(70_000)), 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', /larger than 64 KiB/],
    [() => rmSync(files.client), 'TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE', /cannot read .* \(ENOENT\)/]
  ]
  registerSecret('short-new-secret', 'rotated-with-a-trailing-space')
  for (const [breakIt, variable, reason] of cases) {
    breakIt()
    // A FIFO must not block the reload, nor the requests served meanwhile.
    const served = token(OLD_SIDECAR)
    await reload(env)
    t.equal((await served).statusCode, 200, 'a request during the reload is answered')
    const failure = lines().filter((l) => l.event === 'config_reload_failed').at(-1)
    t.match(failure, { level: 'error', variable, msg: reason }, variable)
    t.equal((await token(OLD_SIDECAR)).statusCode, 200, 'old sidecar secret still works')
    write(files.sidecar, `${OLD_SIDECAR}\n`)
  }
  t.equal(auth0.tokenRequests(), 1, 'nothing was fetched with a rejected client secret')
})

t.test('values given directly in the environment are not reloaded', async (t) => {
  t.same(await reloadSecrets({ TOOLBRIDGE_SIDECAR_SECRET: OLD_SIDECAR }, { TOOLBRIDGE_SIDECAR_SECRET: OLD_SIDECAR }), { changed: {}, unchanged: [], rejected: [] })
})

t.test('SIGHUP in a running process rotates the client secret; the process never exits on a bad reload', async (t) => {
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  const clientFile = join(dir, 'spawned-client')
  const sidecarFile = join(dir, 'spawned-sidecar')
  write(clientFile, `${auth0.clientSecret}\n`)
  write(sidecarFile, `${OLD_SIDECAR}\n`)
  const sidecar = spawnSidecar({
    TOOLBRIDGE_AUTH0_CLIENT_ID: auth0.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET_FILE: clientFile,
    TOOLBRIDGE_AUTH0_TOKEN_URL: auth0.tokenUrl,
    TOOLBRIDGE_SIDECAR_SECRET_FILE: sidecarFile,
    TOOLBRIDGE_SIDECAR_PORT: '0'
  })
  t.teardown(async () => {
    if (sidecar.child.exitCode === null) sidecar.child.kill('SIGTERM')
    await sidecar.exited
  })
  await sidecar.listening
  await sidecar.waitFor((l) => l.msg === 'Auth0 token refreshed')

  write(sidecarFile, 'short\n')
  sidecar.child.kill('SIGHUP')
  await sidecar.waitFor((l) => l.event === 'config_reload_failed')
  t.equal(sidecar.child.exitCode, null, 'still running after a bad reload')

  const rotated = 'spawned-rotated-client-secret'
  registerSecret(rotated)
  auth0.clientSecret = rotated
  write(clientFile, `${rotated}\n`)
  write(sidecarFile, `${OLD_SIDECAR}\n`)
  sidecar.child.kill('SIGHUP')
  await sidecar.waitFor((l) => l.event === 'token_refreshed' && l.trigger === 'forced')
  t.equal(auth0.requests.at(-1)?.body?.client_secret, rotated)
  t.match(sidecar.lines.filter((l) => l.event === 'config_reloaded').at(-1), { changed: ['TOOLBRIDGE_AUTH0_CLIENT_SECRET'] })
  const logged = JSON.stringify(sidecar.lines)
  t.notMatch(logged, rotated)
  t.notMatch(logged, OLD_SIDECAR)
})
