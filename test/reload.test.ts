import { execFileSync } from 'node:child_process'
import { generateKeyPairSync, type KeyObject } from 'node:crypto'
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
  sidecar.tokens.default.start()
  await until(() => auth0.issued.length === 1)
  await until(() => sidecar.tokens.default.current() !== undefined)
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

t.test('private_key_jwt: a rotated key file signs from the next request on, proven for each audience; a bad key is rejected', async (t) => {
  const pair = (): { pem: string, publicKey: KeyObject } => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' })
    return { pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, publicKey }
  }
  const first = pair()
  const second = pair()
  const audiences = ['https://api.example', 'https://reports.example']
  const auth0 = await FakeAuth0.start({ assertionKey: first.publicKey, audiences })
  const keyFile = join(dir, `key-${++n}.pem`)
  write(keyFile, first.pem)
  const env = {
    TOOLBRIDGE_AUTH0_CLIENT_ID: auth0.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'private_key_jwt',
    TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE: keyFile,
    TOOLBRIDGE_AUTH0_AUDIENCE: audiences.join(','),
    TOOLBRIDGE_AUTH0_TOKEN_URL: auth0.tokenUrl,
    TOOLBRIDGE_SIDECAR_SECRET: OLD_SIDECAR
  }
  const captured = captureLogger()
  const sidecar = createSidecar(loadConfig(env), captured.logger, { random: () => 0 })
  t.teardown(async () => {
    await sidecar.app.close()
    await auth0.close()
  })
  sidecar.tokens.start()
  await until(() => auth0.assertions.length === 2)

  auth0.assertionKey = second.publicKey
  write(keyFile, second.pem)
  await sidecar.reload(env)
  t.equal(auth0.tokenRequests(), 4, 'one proving fetch per audience')
  t.equal(auth0.assertions.length, 4, 'both signed with the new key (the stand-in verified them)')
  t.same(audiences.map((a) => auth0.requestsFor(a)), [2, 2])
  t.match(captured.lines().find((l) => l.event === 'config_reloaded'), { changed: ['TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY'], rejected: [] })

  for (const [bad, reason] of [
    [generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }) as string, /public key/],
    [generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, /1024 bits/],
    ['not a key\n', /expected a PEM private key/]
  ] as const) {
    write(keyFile, bad)
    await sidecar.reload(env)
    t.match(captured.lines().filter((l) => l.event === 'config_reload_failed').at(-1), { level: 'error', variable: 'TOOLBRIDGE_AUTH0_CLIENT_ASSERTION_KEY_FILE', msg: reason })
  }
  t.equal(auth0.tokenRequests(), 4, 'nothing fetched for a rejected key')
  write(keyFile, second.pem)
  await sidecar.reload(env)
  t.equal(auth0.tokenRequests(), 4, 'an unchanged key fetches nothing')
  const res = await sidecar.app.inject({ url: '/token', headers: { authorization: `Bearer ${OLD_SIDECAR}` } })
  t.ok(auth0.issued.slice(2).includes(res.json().access_token), 'a token from the rotated key is served')
  const logged = JSON.stringify(captured.lines())
  for (const { pem } of [first, second]) t.notOk(logged.includes(pem.split('\n')[1]!), 'no key material in the log')
})

t.test('static mode: a rotated sidecar secret applies; there is no client credential to rotate', async (t) => {
  const sidecarFile = join(dir, `static-sidecar-${++n}`)
  write(sidecarFile, `${OLD_SIDECAR}\n`)
  registerSecret('static-mode-opaque-token')
  const env = { TOOLBRIDGE_JWT_TOKEN: 'static-mode-opaque-token', TOOLBRIDGE_SIDECAR_SECRET_FILE: sidecarFile }
  const captured = captureLogger()
  const sidecar = createSidecar(loadConfig(env), captured.logger)
  t.teardown(() => sidecar.app.close())
  sidecar.tokens.start()
  write(sidecarFile, `${NEW_SIDECAR}\n`)
  await sidecar.reload(env)
  const res = await sidecar.app.inject({ url: '/token', headers: { authorization: `Bearer ${NEW_SIDECAR}` } })
  t.equal(res.json().access_token, 'static-mode-opaque-token')
  t.match(captured.lines().find((l) => l.event === 'config_reloaded'), { changed: ['TOOLBRIDGE_SIDECAR_SECRET'] })
})

const PREVIOUS_SIDECAR = 'reload-previous-sidecar-secret-0123456789'
registerSecret(PREVIOUS_SIDECAR)

t.test('TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: accepted alongside the current secret, validated like it, reloaded from its file', async (t) => {
  const { auth0, env, files, lines, token } = await setup(t)
  const previousFile = join(dir, `previous-${++n}`)
  write(previousFile, `${PREVIOUS_SIDECAR}\n`)
  const withPrevious = { ...env, TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS_FILE: previousFile }
  const captured = captureLogger()
  const sidecar = createSidecar(loadConfig(withPrevious), captured.logger, { random: () => 0 })
  t.teardown(() => sidecar.app.close())
  sidecar.tokens.default.start()
  await until(() => sidecar.tokens.default.current() !== undefined)
  const ask = async (secret: string) => sidecar.app.inject({ url: '/token', headers: { authorization: `Bearer ${secret}` } })
  t.equal((await ask(OLD_SIDECAR)).statusCode, 200, 'the current secret')
  t.equal((await ask(PREVIOUS_SIDECAR)).statusCode, 200, 'the previous secret')
  t.equal((await token(PREVIOUS_SIDECAR)).statusCode, 401, 'without the variable, the previous secret gets 401')

  // Rotation: the file now names the secret before the current one; the one before that is refused.
  write(files.sidecar, `${NEW_SIDECAR}\n`)
  write(previousFile, `${OLD_SIDECAR}\n`)
  await sidecar.reload(withPrevious)
  t.equal((await ask(NEW_SIDECAR)).statusCode, 200)
  t.equal((await ask(OLD_SIDECAR)).statusCode, 200, 'the clients still on the old secret are served')
  t.equal((await ask(PREVIOUS_SIDECAR)).statusCode, 401, 'the secret before is no longer accepted')
  t.match(captured.lines().find((l) => l.event === 'config_reloaded'), { changed: ['TOOLBRIDGE_SIDECAR_SECRET', 'TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS'] })

  write(previousFile, 'short\n')
  await sidecar.reload(withPrevious)
  t.match(captured.lines().filter((l) => l.event === 'config_reload_failed').at(-1), { variable: 'TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS_FILE', msg: /at least 32 characters/ })
  t.equal((await ask(OLD_SIDECAR)).statusCode, 200, 'a bad previous file keeps the value in force')
  t.equal(auth0.tokenRequests(), 2, 'no token request for sidecar secret changes (one start-up fetch per sidecar)')
  t.notMatch(JSON.stringify([...captured.lines(), ...lines()]), PREVIOUS_SIDECAR, 'never logged')

  t.throws(() => loadConfig({ ...env, TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: 'too-short' }), { variable: 'TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS', message: /TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: expected the sidecar secret clients held before a rotation/ })
  t.throws(() => loadConfig({ ...env, TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: `${PREVIOUS_SIDECAR} x` }), { message: /letters, digits/ })
  t.notMatch(String((() => { try { loadConfig({ ...env, TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: 'too-short' }) } catch (err) { return (err as Error).message } })()), 'too-short', 'the value is not echoed')
})

t.test('a running process accepts TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS; without it the old secret gets 401', async (t) => {
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  const base = {
    TOOLBRIDGE_AUTH0_CLIENT_ID: auth0.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: auth0.clientSecret,
    TOOLBRIDGE_AUTH0_TOKEN_URL: auth0.tokenUrl,
    TOOLBRIDGE_SIDECAR_SECRET: NEW_SIDECAR,
    TOOLBRIDGE_SIDECAR_PORT: '0'
  }
  const status = async (port: number | undefined, secret: string): Promise<number> => {
    const res = await fetch(`http://127.0.0.1:${port!}/token`, { headers: { authorization: `Bearer ${secret}` } })
    await res.arrayBuffer()
    return res.status
  }
  for (const [env, oldStatus] of [[{ ...base, TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: OLD_SIDECAR }, 200], [base, 401]] as const) {
    const sidecar = spawnSidecar(env)
    t.teardown(async () => {
      if (sidecar.child.exitCode === null) sidecar.child.kill('SIGTERM')
      await sidecar.exited
    })
    const port = await sidecar.listening
    await sidecar.waitFor((l) => l.msg === 'Auth0 token refreshed')
    t.equal(await status(port, NEW_SIDECAR), 200, 'the current secret')
    t.equal(await status(port, OLD_SIDECAR), oldStatus, oldStatus === 200 ? 'the previous secret, while it is set' : 'the old secret, once the variable is gone')
    t.notMatch(JSON.stringify(sidecar.lines), OLD_SIDECAR)
    t.equal(sidecar.stderr(), '')
    sidecar.child.kill('SIGTERM')
    t.equal((await sidecar.exited).code, 0)
  }
})
