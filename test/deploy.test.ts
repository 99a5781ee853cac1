import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { parse } from 'smol-toml'
import t from 'tap'
import { request } from 'undici'
import { FakeAuth0 } from './fixtures/fake-auth0.js'
import { spawnCommand } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'

const run = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SHUTDOWN_BOUND_SECONDS = 4
const SECRET = 'deploy-sidecar-secret-0123456789abcdef'
registerSecret(SECRET)

interface Scoped { processes?: string[], [key: string]: unknown }
interface FlyConfig {
  app: string
  kill_timeout: number
  kill_signal?: string
  processes: Record<string, string>
  env: Record<string, string>
  checks?: Record<string, Scoped>
  restart?: Scoped[]
  metrics?: Scoped[]
  services?: Scoped[]
  http_service?: Scoped
  vm?: Scoped[]
}

const fly = parse(readFileSync(join(ROOT, 'fly.toml'), 'utf8')) as unknown as FlyConfig
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')

/** The JSON array of an exec-form Dockerfile instruction in the final stage. */
function execForm (instruction: string): string[] {
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  const line = finalStage.split('\n').find((l) => l.startsWith(`${instruction} `))
  if (line === undefined) throw new Error(`no ${instruction} in the final stage`)
  const json = line.slice(line.indexOf('['))
  return JSON.parse(json) as string[]
}

t.test('fly.toml: every check, restart, metrics, service and vm entry names existing process groups', async (t) => {
  const groups = Object.keys(fly.processes)
  t.same(groups.sort(), ['mcp', 'tokens'])
  const scoped: Array<[string, Scoped]> = [
    ...Object.entries(fly.checks ?? {}).map(([name, c]) => [`checks.${name}`, c] as [string, Scoped]),
    ...(fly.restart ?? []).map((r, i) => [`restart[${i}]`, r] as [string, Scoped]),
    ...(fly.metrics ?? []).map((m, i) => [`metrics[${i}]`, m] as [string, Scoped]),
    ...(fly.services ?? []).map((s, i) => [`services[${i}]`, s] as [string, Scoped]),
    ...(fly.vm ?? []).map((v, i) => [`vm[${i}]`, v] as [string, Scoped]),
    ...(fly.http_service === undefined ? [] : [['http_service', fly.http_service] as [string, Scoped]])
  ]
  t.ok(scoped.length >= 5)
  for (const [name, entry] of scoped) {
    t.ok(Array.isArray(entry.processes) && entry.processes.length > 0, `${name} is scoped explicitly`)
    for (const group of entry.processes ?? []) t.ok(groups.includes(group), `${name}: ${group} exists`)
  }
})

t.test('fly.toml: the tokens check is /healthz on the port the sidecar listens on', async (t) => {
  const port = Number(fly.env.TOOLBRIDGE_SIDECAR_PORT)
  t.equal(fly.env.TOOLBRIDGE_SIDECAR_HOST, '::', 'dual-stack on Fly')
  const checks = Object.values(fly.checks ?? {}).filter((c) => c.processes?.includes('tokens'))
  t.equal(checks.length, 1)
  t.match(checks[0], { type: 'http', port, path: '/healthz', grace_period: String, interval: String, timeout: String })
  t.equal(fly.env.TOOLBRIDGE_TOKEN_SIDECAR_URL, `http://tokens.process.${fly.app}.internal:${port}`)
  t.match(fly.metrics?.find((m) => m.processes?.includes('tokens')), { port, path: '/metrics' })
  t.match(fly.restart?.find((r) => r.processes?.includes('tokens')), { policy: 'always' })
})

t.test('fly.toml: shutdown fits, and nothing exposes the sidecar publicly', async (t) => {
  t.ok(fly.kill_timeout > SHUTDOWN_BOUND_SECONDS, `kill_timeout ${fly.kill_timeout} s exceeds the ${SHUTDOWN_BOUND_SECONDS} s shutdown bound`)
  t.ok(['SIGINT', 'SIGTERM', undefined].includes(fly.kill_signal), 'a signal the sidecar shuts down on')
  const services = [...(fly.services ?? []), ...(fly.http_service === undefined ? [] : [fly.http_service])]
  for (const service of services) t.notOk(service.processes?.includes('tokens'), 'no service for tokens')
  const { SHUTDOWN_GRACE_MS } = await import('../src/shutdown.js')
  t.equal(SHUTDOWN_GRACE_MS / 1000, SHUTDOWN_BOUND_SECONDS, 'the bound tested here is the one the CLI uses')
})

t.test('Dockerfile: slim runtime, production, unprivileged, exec-form CMD and a curl-free healthcheck', async (t) => {
  const stages = dockerfile.split('\n').filter((l) => l.startsWith('FROM '))
  t.equal(stages.length, 2, 'multi-stage')
  t.match(stages[1], /^FROM node:\$\{NODE_VERSION\}-slim$/)
  t.match(dockerfile, /^ARG NODE_VERSION=\d+$/m)
  t.match(dockerfile, /npm run build && npm prune --omit=dev/)
  t.match(dockerfile, /^ENV NODE_ENV=production/m)
  t.match(dockerfile, /^USER node$/m)
  t.match(dockerfile, /^EXPOSE 8787$/m)
  t.same(execForm('CMD'), ['node', 'dist/cli.js'])
  t.same(execForm('HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD'), ['node', 'dist/cli.js', 'healthcheck'])
  t.notMatch(dockerfile.split('\n').filter((l) => !l.startsWith('#')).join('\n'), /curl|wget/i, 'no instruction needs curl')
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')
  for (const path of ['.git', 'node_modules', 'test']) t.ok(ignored.includes(path), `.dockerignore keeps out ${path}`)
})

t.test('the image major is the one CI also tests on', async (t) => {
  const major = /^ARG NODE_VERSION=(\d+)$/m.exec(dockerfile)![1]
  t.match(readFileSync(join(ROOT, '.ci/run'), 'utf8'), new RegExp(`node@${major}\\b`))
})

t.test('production install from the packed tarball serves /token on [::1] and 127.0.0.1', async (t) => {
  const work = mkdtempSync(join(tmpdir(), 'sidecar-pack-'))
  const { stdout } = await run('npm', ['pack', '--json', '--pack-destination', work], { cwd: ROOT })
  const [packed] = JSON.parse(stdout) as Array<{ filename: string, files: Array<{ path: string }> }>
  const files = packed!.files.map((f) => f.path)
  const cmd = execForm('CMD')
  t.ok(files.includes(cmd[1]!), `the CMD's ${cmd[1]} is in the tarball`)
  t.notOk(files.some((f) => f.startsWith('test/') || f.startsWith('src/') || f.startsWith('bench/')), 'no sources or tests shipped')

  const install = join(work, 'install')
  await run('mkdir', ['-p', install])
  writeFileSync(join(install, 'package.json'), '{"name":"install-check","private":true}')
  await run('npm', ['install', '--omit=dev', '--no-audit', '--no-fund', '--prefer-offline', join(work, packed!.filename)], { cwd: install })
  const pkgDir = join(install, 'node_modules', 'toolbridge-token-sidecar')
  t.notOk(existsSync(join(install, 'node_modules', 'tap')), 'dev dependencies are not installed')
  t.notOk(existsSync(join(install, 'node_modules', 'typescript')))

  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  const env = {
    TOOLBRIDGE_AUTH0_CLIENT_ID: auth0.clientId,
    TOOLBRIDGE_AUTH0_CLIENT_SECRET: auth0.clientSecret,
    TOOLBRIDGE_AUTH0_TOKEN_URL: auth0.tokenUrl,
    TOOLBRIDGE_SIDECAR_SECRET: SECRET,
    TOOLBRIDGE_SIDECAR_HOST: '::',
    TOOLBRIDGE_SIDECAR_PORT: '0',
    NODE_ENV: 'production'
  }
  // Through the package's bin, as `token-sidecar` would be run.
  const sidecar = spawnCommand(join(install, 'node_modules', '.bin', 'token-sidecar'), [], env, { cwd: install })
  t.teardown(async () => {
    if (sidecar.child.exitCode === null) sidecar.child.kill('SIGTERM')
    await sidecar.exited
  })
  const port = await sidecar.listening
  t.ok(port, `listening on ${port}`)
  await sidecar.waitFor((l) => l.msg === 'Auth0 token refreshed')
  for (const host of ['[::1]', '127.0.0.1']) {
    const res = await request(`http://${host}:${port}/token`, { headers: { authorization: `Bearer ${SECRET}` } })
    const body = await res.body.json() as { access_token: string }
    t.equal(res.statusCode, 200, host)
    t.equal(body.access_token, auth0.issued[0])
  }
  t.equal(sidecar.stderr(), '', 'no warnings at start-up')

  // The image's HEALTHCHECK, run from the package folder as the image's WORKDIR.
  const [bin, ...args] = execForm('HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD')
  const probeEnv = { PATH: process.env.PATH, TOOLBRIDGE_SIDECAR_HOST: '::', TOOLBRIDGE_SIDECAR_PORT: String(port) }
  const healthy = await run(bin === 'node' ? process.execPath : bin!, args, { cwd: pkgDir, env: probeEnv })
  t.match(healthy.stdout, /200 ok/)
  sidecar.child.kill('SIGTERM')
  t.equal((await sidecar.exited).code, 0)
  const stopped = await run(process.execPath, args, { cwd: pkgDir, env: probeEnv }).then(() => 0, (err: { code: number }) => err.code)
  t.equal(stopped, 1, 'the healthcheck fails against a stopped sidecar')
})

const guide = readFileSync(join(ROOT, 'docs/deploy-fly.md'), 'utf8')
/** The guide's shell lines (in sh code blocks). */
const guideCommands = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n')).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))

t.test('fly.toml: the blue-green strategy, which gates both groups on the tokens check', async (t) => {
  const deploy = (fly as unknown as { deploy?: { strategy?: string } }).deploy
  t.equal(deploy?.strategy, 'bluegreen')
  t.ok(Object.values(fly.checks ?? {}).length >= 1, 'blue-green needs at least one check')
  t.notOk('mounts' in (fly as object), 'and no volumes')
})

t.test('deploy guide: only commands and flags the tools accept (checked against flyctl\'s source)', async (t) => {
  t.ok(guideCommands.length > 10)
  for (const line of guideCommands.filter((l) => /\bfly logs\b/.test(l))) {
    t.notMatch(line, /\s-p\b|--process/, `fly logs has no process-group flag: ${line}`)
  }
  t.notMatch(guide, /\bpkill\b[^`]*-HUP|-C "pkill/, 'no pkill: slim images do not have it')
  t.notMatch(guide, /build --build-context/, 'flyctl has no --build-context')
  const blocks = [...guide.matchAll(/```dockerfile\n([\s\S]*?)```/g)].map((m) => m[1]!)
  for (const block of blocks) t.notMatch(block, /^# syntax=/m, 'no frontend pulled from Docker Hub')
  t.match(guide, /token-sidecar\/node_modules\n\s*token-sidecar\/dist\n/, '.dockerignore advice for the MCP repository')
  t.match(guide, /\.env\*/)
  t.match(guide, /TOOLBRIDGE_SIDECAR_HOST = "::"/, 'the separate app must listen on ::')
  t.match(guide, /exec "\$@"/, 'ENTRYPOINT advice')
})

t.test('deploy guide: the MCP template builds the sidecar under a stage name no build context can shadow, and runs what fly.toml runs', async (t) => {
  const template = /<!-- image-test: mcp-template begins -->\n```dockerfile\n([\s\S]*?)```\n<!-- image-test: mcp-template ends -->/.exec(guide)?.[1]
  t.ok(template, 'the template the image test builds is marked in the guide')
  const stage = /^FROM node:\d+-slim AS (\S+)$/m.exec(template!)?.[1]
  t.ok(stage !== undefined && stage !== 'token-sidecar', `stage ${stage} is not the checkout's name`)
  for (const line of template!.split('\n').filter((l) => l.startsWith('COPY --from='))) t.match(line, `COPY --from=${stage!} `)
  const major = /^ARG NODE_VERSION=(\d+)$/m.exec(dockerfile)![1]
  t.match(template, new RegExp(`^FROM node:${major}-slim AS`, 'm'), 'the same Node.js major as the standalone image')
  t.equal(fly.processes.tokens, 'node /opt/token-sidecar/dist/cli.js')
  t.match(template, /COPY --from=\S+ \/opt\/token-sidecar \/opt\/token-sidecar/)
})

t.test('images: no syntax line, and .dockerignore keeps .env files out', async (t) => {
  t.notMatch(dockerfile, /^# syntax=/m)
  t.ok(readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n').includes('.env*'))
})

t.test('the Python client\'s version is the sidecar\'s', async (t) => {
  const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
  t.match(readFileSync(join(ROOT, 'clients/python/pyproject.toml'), 'utf8'), new RegExp(`^version = "${version.replaceAll('.', '\\.')}"$`, 'm'))
  t.match(readFileSync(join(ROOT, 'clients/python/toolbridge_sidecar_auth/__init__.py'), 'utf8'), new RegExp(`^__version__ = "${version.replaceAll('.', '\\.')}"$`, 'm'))
})
