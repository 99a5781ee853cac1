import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { parse } from 'smol-toml'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { FakeAuth0 } from './fixtures/fake-auth0.js'
import { spawnCommand } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'
import { ROOT } from './fixtures/suite-paths.js'

const run = promisify(execFile)
const SHUTDOWN_BOUND_SECONDS = 4
const SECRET = 'deploy-sidecar-secret-0123456789abcdef'
registerSecret(SECRET)

interface Scoped { processes?: string[], [key: string]: unknown }
interface FlyConfig {
  app: string
  kill_timeout: number
  kill_signal?: string
  processes?: Record<string, string>
  env: Record<string, string>
  deploy?: { strategy?: string }
  build?: { dockerfile?: string }
  checks?: Record<string, Scoped>
  restart?: Scoped[]
  metrics?: Scoped[]
  services?: Scoped[]
  http_service?: Scoped
  vm?: Scoped[]
  files?: Array<Scoped & { guest_path?: string, secret_name?: string }>
  mounts?: unknown
}

const fly = parse(readFileSync(join(ROOT, 'fly.toml'), 'utf8')) as unknown as FlyConfig & { processes: Record<string, string> }
const tokensApp = parse(readFileSync(join(ROOT, 'deploy/fly.tokens-app.toml'), 'utf8')) as unknown as FlyConfig
const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8')
const guide = readFileSync(join(ROOT, 'docs/deploy-fly.md'), 'utf8')
/** The guide's shell lines (in sh code blocks). */
const guideCommands = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n')).filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
const lockfile = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean, hasInstallScript?: boolean, version?: string }> }

/** flyctl's ProcessNames(): the [processes] keys, or its default group `app` without them. */
function processNames (config: FlyConfig): string[] {
  const names = Object.keys(config.processes ?? {})
  return names.length > 0 ? names.sort() : ['app']
}

function scopedEntries (config: FlyConfig): Array<[string, Scoped]> {
  return [
    ...Object.entries(config.checks ?? {}).map(([name, c]) => [`checks.${name}`, c] as [string, Scoped]),
    ...(config.restart ?? []).map((r, i) => [`restart[${i}]`, r] as [string, Scoped]),
    ...(config.metrics ?? []).map((m, i) => [`metrics[${i}]`, m] as [string, Scoped]),
    ...(config.services ?? []).map((s, i) => [`services[${i}]`, s] as [string, Scoped]),
    ...(config.vm ?? []).map((v, i) => [`vm[${i}]`, v] as [string, Scoped]),
    ...(config.files ?? []).map((f, i) => [`files[${i}]`, f] as [string, Scoped]),
    ...(config.http_service === undefined ? [] : [['http_service', config.http_service] as [string, Scoped]])
  ]
}

const seconds = (duration: unknown): number => {
  const m = /^(\d+)(ms|s|m)$/.exec(String(duration))
  if (m === null) throw new Error(`not a duration: ${String(duration)}`)
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 } as Record<string, number>)[m[2]!]!
}

/**
 * flyctl's own validation of a fly.toml (internal/appconfig/validation.go: services,
 * restart, checks, deploy), plus what flyctl accepts but silently ignores: a check,
 * metric or vm scoped to a group that does not exist. Returns what is wrong.
 */
function flyctlProblems (config: FlyConfig): string[] {
  const problems: string[] = []
  const groups = processNames(config)
  const hasProcesses = Object.keys(config.processes ?? {}).length > 0
  for (const [name, entry] of scopedEntries(config)) {
    if (entry.processes === undefined || entry.processes.length === 0) {
      if (hasProcesses) problems.push(`${name} has no processes in an app with [processes]`)
      continue
    }
    for (const group of entry.processes) if (!groups.includes(group)) problems.push(`${name}: no process group ${group}`)
  }
  for (const restart of config.restart ?? []) {
    if (!['always', 'on-failure', 'never'].includes(String(restart.policy))) problems.push(`restart policy ${String(restart.policy)}`)
  }
  for (const [name, check] of Object.entries(config.checks ?? {})) {
    if (seconds(check.timeout) > 60) problems.push(`checks.${name}: timeout over 60 s`)
    if (!['http', 'tcp'].includes(String(check.type))) problems.push(`checks.${name}: type ${String(check.type)}`)
  }
  if (config.deploy?.strategy !== undefined && !['canary', 'rolling', 'immediate', 'bluegreen'].includes(config.deploy.strategy)) problems.push(`strategy ${config.deploy.strategy}`)
  for (const [variable, path] of Object.entries(config.env)) {
    if (!variable.endsWith('_FILE')) continue
    const file = config.files?.find((f) => f.guest_path === path)
    if (file === undefined) problems.push(`${variable}: no [[files]] entry writes ${path}`)
    else if (typeof file.secret_name !== 'string' || file.secret_name === '') problems.push(`${variable}: its [[files]] entry has no secret_name`)
  }
  return problems
}

/** Blue-green needs a check on every group, or that group's Machines roll out ungated (and with none, it refuses). */
function ungatedGroups (config: FlyConfig): string[] {
  return processNames(config).filter((group) => !Object.values(config.checks ?? {}).some((c) => c.processes?.includes(group)))
}

/** The JSON array of an exec-form Dockerfile instruction in the final stage. */
function execForm (instruction: string): string[] {
  const finalStage = dockerfile.slice(dockerfile.lastIndexOf('\nFROM '))
  const line = finalStage.split('\n').find((l) => l.startsWith(`${instruction} `))
  if (line === undefined) throw new Error(`no ${instruction} in the final stage`)
  const json = line.slice(line.indexOf('['))
  return JSON.parse(json) as string[]
}

t.test('fly.toml: every check, restart, metrics, service and vm entry names existing process groups', async (t) => {
  t.same(processNames(fly), ['app', 'tokens'], 'the MCP server keeps the default group name, app')
  const scoped = scopedEntries(fly)
  t.ok(scoped.length >= 6)
  for (const [name, entry] of scoped) t.ok(Array.isArray(entry.processes) && entry.processes.length > 0, `${name} is scoped explicitly`)
  t.same(flyctlProblems(fly), [], 'what flyctl validates, and nothing it would silently drop')
})

t.test('the fly.toml validator catches what the issue found in the separate-app advice', async (t) => {
  // An app without [processes] has only `app`: `tokens` fails [[restart]] validation and silently loses its check and metrics.
  const copied: FlyConfig = { ...tokensApp, checks: { tokens_health: { ...tokensApp.checks!.tokens_health, processes: ['tokens'] } }, restart: [{ processes: ['tokens'], policy: 'always' }], metrics: [{ processes: ['tokens'] }] }
  t.same(flyctlProblems(copied), ['checks.tokens_health: no process group tokens', 'restart[0]: no process group tokens', 'metrics[0]: no process group tokens'])
  t.same(flyctlProblems({ ...fly, env: { ...fly.env, TOOLBRIDGE_SIDECAR_SECRET_FILE: '/run/secrets/s' } }), ['TOOLBRIDGE_SIDECAR_SECRET_FILE: no [[files]] entry writes /run/secrets/s'])
  t.same(flyctlProblems({ ...fly, env: { ...fly.env, X_FILE: '/f' }, files: [{ guest_path: '/f', processes: ['tokens'] }] }), ['X_FILE: its [[files]] entry has no secret_name'])
  t.same(flyctlProblems({ ...fly, http_service: { internal_port: 8000 } }), ['http_service has no processes in an app with [processes]'])
  t.same(flyctlProblems({ ...fly, deploy: { strategy: 'blue-green' }, restart: [{ processes: ['tokens'], policy: 'sometimes' }] }), ['restart policy sometimes', 'strategy blue-green'])
  t.same(flyctlProblems({ ...fly, checks: { slow: { processes: ['app'], type: 'grpc', timeout: '2m' } } }), ['checks.slow: timeout over 60 s', 'checks.slow: type grpc'])
  t.same(ungatedGroups({ ...fly, checks: { tokens_health: fly.checks!.tokens_health! } }), ['app'])
})

t.test('fly.toml: blue-green has a check to gate on in both groups', async (t) => {
  t.equal(fly.deploy?.strategy, 'bluegreen')
  t.same(ungatedGroups(fly), [], 'every group has a check of its own')
  const appCheck = Object.values(fly.checks ?? {}).find((c) => c.processes?.includes('app'))
  t.match(appCheck, { port: fly.http_service?.internal_port, grace_period: String, interval: String, timeout: String }, 'the MCP check probes the port its service serves')
  t.notOk('mounts' in (fly as object), 'and no volumes')
})

t.test('deploy/fly.tokens-app.toml: a complete tokens-only app, valid by the same rules', async (t) => {
  t.same(processNames(tokensApp), ['app'], 'no [processes]: its one group is the default, app')
  t.same(flyctlProblems(tokensApp), [])
  t.same(ungatedGroups(tokensApp), [])
  t.equal(tokensApp.deploy?.strategy, 'bluegreen')
  t.equal(tokensApp.env.TOOLBRIDGE_SIDECAR_HOST, '::', 'the standalone image must listen on :: for 6PN')
  const port = Number(tokensApp.env.TOOLBRIDGE_SIDECAR_PORT)
  t.match(tokensApp.checks?.tokens_health, { type: 'http', port, path: '/healthz', processes: ['app'] })
  t.match(tokensApp.metrics?.[0], { port, path: '/metrics', processes: ['app'] })
  t.match(tokensApp.restart?.[0], { policy: 'always', processes: ['app'] })
  t.equal(tokensApp.services, undefined, 'no public service')
  t.equal(tokensApp.http_service, undefined)
  t.ok(tokensApp.kill_timeout > SHUTDOWN_BOUND_SECONDS)
  // flyctl resolves [build] dockerfile against the config file's directory.
  t.ok(existsSync(join(ROOT, 'deploy', tokensApp.build!.dockerfile!)), 'its dockerfile is this repository\'s')
  t.equal(join(ROOT, 'deploy', tokensApp.build!.dockerfile!), join(ROOT, 'Dockerfile'))
})

t.test('fly.toml: the tokens check is /healthz on the port the sidecar listens on', async (t) => {
  const port = Number(fly.env.TOOLBRIDGE_SIDECAR_PORT)
  t.equal(fly.env.TOOLBRIDGE_SIDECAR_HOST, '::', 'dual-stack on Fly')
  const checks = Object.values(fly.checks ?? {}).filter((c) => c.processes?.includes('tokens'))
  t.equal(fly.processes.tokens, 'node /opt/token-sidecar/dist/cli.js')
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
  t.ok(stages.length >= 2, 'multi-stage')
  t.match(stages.at(-1), /^FROM node:\$\{NODE_VERSION\}-slim$/)
  t.match(dockerfile, /^ARG NODE_VERSION=\d+$/m)
  t.match(dockerfile, /^ENV NODE_ENV=production/m)
  t.match(dockerfile, /^USER node$/m)
  t.match(dockerfile, /^EXPOSE 8787$/m)
  t.same(execForm('CMD'), ['node', 'dist/cli.js'])
  t.same(execForm('HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD'), ['node', 'dist/cli.js', 'healthcheck'])
  t.notMatch(dockerfile.split('\n').filter((l) => !l.startsWith('#')).join('\n'), /curl|wget/i, 'no instruction needs curl')
  const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n')
  for (const path of ['.git', 'node_modules', 'test']) t.ok(ignored.includes(path), `.dockerignore keeps out ${path}`)
})

/** Each stage's instructions, continuation lines joined, comments left out. */
function stagesOf (text: string): Array<{ from: string, instructions: string[] }> {
  const lines = text.replace(/\\\n/g, ' ').split('\n').filter((l) => l.trim() !== '' && !l.trim().startsWith('#'))
  const stages: Array<{ from: string, instructions: string[] }> = []
  for (const line of lines) {
    if (line.startsWith('FROM ')) stages.push({ from: line, instructions: [] })
    else stages.at(-1)?.instructions.push(line.trim())
  }
  return stages
}

/** The rules both images follow (the standalone Dockerfile and the guide's MCP template). */
function imageRules (t: Test, text: string, name: string): void {
  const stages = stagesOf(text)
  const installs = stages.flatMap((s) => s.instructions).filter((i) => /\bnpm (ci|install)\b/.test(i))
  t.ok(installs.length >= 1, `${name}: installs with npm`)
  for (const install of installs) {
    t.match(install, /RUN --mount=type=cache,target=\/root\/\.npm /, `${name}: npm's cache is a cache mount`)
    t.match(install, /--ignore-scripts/, `${name}: no install scripts run`)
  }
  const ci = installs.join(' ')
  t.match(ci, /npm ci --omit=dev /, `${name}: the runtime dependencies come from npm ci --omit=dev`)
  t.notMatch(ci, /npm ci (?![^&]*--omit=dev)/, `${name}: no full npm ci with dev dependencies`)
  const compiler = /npm install --prefix (\S+) [^$]*\$\(node -p "([^"]+)"\)/.exec(ci)
  t.ok(compiler, `${name}: the compiler is installed apart, by itself`)
  const list = /\[('[^\]]+')\]\.map/.exec(compiler![2]!)![1]!
  const names = [...list.matchAll(/'([^']+)'/g)].map((m) => m[1]!)
  t.same(names.sort(), ['@jridgewell/sourcemap-codec', '@types/node', 'esbuild', 'typescript', 'undici-types'], `${name}: only TypeScript, Node's types and the bundler`)
  for (const pkg of names) t.ok(lockfile.packages[`node_modules/${pkg}`]?.version, `${name}: ${pkg} has a locked version`)
  const build = stages.flatMap((s) => s.instructions).find((i) => /node scripts\/build\.mjs/.test(i))
  t.match(build, /find dist -type f \\\( -name '\*\.d\.ts' -o -name '\*\.map' -o -name 'bundle-meta\.json' \\\) -delete/, `${name}: the build (npm run build: tsc, then the bundle) keeps no .d.ts or source maps`)
  t.match(text, /find node_modules -type f \\\( -name '\*\.d\.ts' -o -name '\*\.d\.mts' -o -name '\*\.d\.cts' -o -name '\*\.map' \\\) -delete/, `${name}: nor kept from the dependencies`)
  const final = stages.at(-1)!
  for (const copy of final.instructions.filter((i) => i.startsWith('COPY --from='))) t.notMatch(copy, /\/opt\/compiler/, `${name}: the compiler stays in the build stage`)
}

t.test('images: production dependencies only, the compiler apart, an npm cache mount, no .d.ts or .map', async (t) => {
  imageRules(t, dockerfile, 'Dockerfile')
  const template = /<!-- image-test: mcp-template begins -->\n```dockerfile\n([\s\S]*?)```/.exec(guide)![1]!
  imageRules(t, template, 'the guide\'s MCP template')
  const final = stagesOf(dockerfile).at(-1)!
  t.same(final.instructions.filter((i) => i.startsWith('COPY ')).map((i) => i.split(' ').at(-1)), ['./package.json', './node_modules', './dist'], 'the runtime stage copies package.json, the production modules and the compiled code')
  t.match(final.instructions.find((i) => i.endsWith('./node_modules')), /--from=runtime-modules /, 'modules without their declarations')
})

t.test('no production dependency has an install script, so --ignore-scripts loses nothing', async (t) => {
  const production = Object.entries(lockfile.packages).filter(([path, p]) => path !== '' && p.dev !== true)
  t.ok(production.length > 10)
  t.same(production.filter(([, p]) => p.hasInstallScript === true).map(([path]) => path), [])
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



/**
 * flyctl's commands and flags that the guide uses, read from its source
 * (github.com/superfly/flyctl at ad0172f, August 2026: internal/command/<dir>/<file>.go
 * and internal/flag/flag.go for the shared ones). Long names, with their shorthands.
 */
const COMMON = { app: 'a', config: 'c' }
const FLYCTL: Record<string, Record<string, string | undefined>> = {
  // deploy/deploy.go (CommonFlags and New), flag.Strategy(), flag.Image(), flag.Detach()
  deploy: { ...COMMON, image: 'i', strategy: undefined, ha: undefined, 'wait-timeout': undefined, 'process-groups': undefined, 'update-only': undefined, detach: undefined, 'max-unavailable': undefined, 'smoke-checks': undefined, 'dns-checks': undefined, regions: undefined, 'only-machines': undefined, yes: 'y' },
  // secrets/secrets.go sharedFlags (set, unset), secrets/list.go, secrets/deploy.go
  'secrets set': { ...COMMON, stage: undefined, detach: undefined, 'dns-checks': undefined },
  'secrets unset': { ...COMMON, stage: undefined, detach: undefined, 'dns-checks': undefined },
  'secrets list': { ...COMMON, json: 'j' },
  'secrets deploy': { ...COMMON, detach: undefined, 'dns-checks': undefined },
  // status/status.go
  status: { ...COMMON, json: 'j', all: undefined, deployment: undefined, watch: undefined },
  // machine/list.go, machine/destroy.go (aliases remove, rm)
  'machine list': { ...COMMON, json: 'j', quiet: 'q' },
  'machine destroy': { ...COMMON, force: 'f', image: 'i', select: undefined },
  // apps/releases.go (fly releases)
  releases: { ...COMMON, json: 'j', image: undefined },
  // config/save.go, config/validate.go
  'config save': { ...COMMON, yes: 'y', json: undefined, yaml: undefined },
  'config validate': { ...COMMON, strict: undefined },
  // checks/checks.go
  'checks list': { ...COMMON, 'check-name': undefined, json: 'j' },
  // logs/logs.go: no process-group flag
  logs: { ...COMMON, region: 'r', json: 'j', machine: 'm', select: 's', 'no-tail': 'n' },
  // scale/count.go: flag.ProcessGroup() is --process-group, -g, alias --group
  'scale count': { ...COMMON, yes: 'y', 'process-group': 'g', group: undefined, 'max-per-region': undefined, region: 'r', 'with-new-volumes': undefined, 'from-snapshot': undefined },
  // ssh/console.go
  'ssh console': { ...COMMON, org: 'o', command: 'C', machine: undefined, select: 's', region: 'r', quiet: 'q', address: 'A', container: undefined, 'no-container': undefined, pty: undefined, user: 'u', 'process-group': 'g', group: undefined },
  // redis/create.go
  'redis create': { org: 'o', region: 'r', 'replica-regions': undefined, name: undefined, plan: undefined, 'no-replicas': undefined },
  // apps/create.go
  'apps create': { name: undefined, 'generate-name': undefined, network: undefined, machines: undefined, yes: 'y', save: undefined, org: 'o', json: 'j' }
}

/** Words of a shell command line, quotes honoured ('…' and "…" as one word each). */
function shellWords (line: string): string[] {
  const words: string[] = []
  let word = ''
  let quote: string | undefined
  let inWord = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!
    if (quote !== undefined) {
      if (c === quote) quote = undefined
      else if (c === '\\' && quote === '"' && i + 1 < line.length) word += line[++i]
      else word += c
    } else if (c === '"' || c === "'") {
      quote = c
      inWord = true
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word)
      word = ''
      inWord = false
    } else {
      word += c
      inWord = true
    }
  }
  if (inWord) words.push(word)
  return words
}

/** Every `fly …` command of the guide: sh blocks (continuations joined, comments cut) and inline code. */
function flyCommands (text: string): string[] {
  const fromBlocks = [...text.matchAll(/```sh\n([\s\S]*?)```/g)]
    .flatMap((m) => m[1]!.replace(/\\\n\s*/g, ' ').split('\n'))
    .map((l) => l.replace(/\s+#.*$/, '').trim())
  const inline = [...text.matchAll(/`(fly [^`]+)`/g)].map((m) => m[1]!)
  return [...fromBlocks, ...inline].filter((l) => /^fly \w/.test(l))
}

/** What is wrong with one `fly …` command line: an unknown command or flag. */
function flyctlCommandProblems (line: string): string[] {
  const words = shellWords(line).slice(1)
  const key = Object.keys(FLYCTL).filter((k) => words.slice(0, k.split(' ').length).join(' ') === k).sort((a, b) => b.length - a.length)[0]
  if (key === undefined) return [`unknown command: fly ${words.slice(0, 2).join(' ')}`]
  const flags = FLYCTL[key]!
  const problems: string[] = []
  for (const word of words.slice(key.split(' ').length)) {
    if (word.startsWith('--')) {
      const name = word.slice(2).split('=')[0]!
      if (!(name in flags)) problems.push(`fly ${key}: no --${name}`)
    } else if (/^-[A-Za-z]$/.test(word)) {
      if (!Object.values(flags).includes(word.slice(1))) problems.push(`fly ${key}: no ${word}`)
    }
  }
  return problems
}

t.test('deploy guide: every fly command and flag is one flyctl has (a table read from its source)', async (t) => {
  const commands = flyCommands(guide)
  t.ok(commands.length >= 30, `${commands.length} fly commands checked`)
  for (const command of commands) t.same(flyctlCommandProblems(command), [], command)
  // The checker itself: what the issue found wrong, and spellings flyctl does not have.
  t.same(flyctlCommandProblems('fly logs -a "$APP" --process-group tokens'), ['fly logs: no --process-group'])
  t.same(flyctlCommandProblems('fly machine destroy <id> -p'), ['fly machine destroy: no -p'])
  t.same(flyctlCommandProblems('fly deploy --build-context token-sidecar=.'), ['fly deploy: no --build-context'])
  t.same(flyctlCommandProblems('fly secrets rotate X'), ['unknown command: fly secrets rotate'])
  t.same(shellWords(`fly ssh console -C "sh -c 'kill -HUP \\$p'" -a x`), ['fly', 'ssh', 'console', '-C', "sh -c 'kill -HUP $p'", '-a', 'x'])
  t.same(flyctlCommandProblems(`fly ssh console -a x -C "sh -c 'grep -qs x -p'"`), [], 'flags inside a quoted command are not flyctl\'s')
})

t.test('deploy guide: moving an existing one-group app keeps `app`, gates both groups and has a way back at each step', async (t) => {
  const section = guide.slice(guide.indexOf('## 3. Moving an existing MCP app'), guide.indexOf('## 4. '))
  t.ok(section.length > 2000, 'the migration section is there')
  t.match(section, /\*\*Keep the group name `app`\.\*\*/)
  const commands = flyCommands(section)
  const firstDeploy = commands.find((c) => c.startsWith('fly deploy'))
  t.equal(firstDeploy, 'fly deploy -a "$APP" --ha=false', 'the first deploy: the strategy from fly.toml, one running tokens Machine')
  t.ok(commands.some((c) => /^fly scale count tokens=2 /.test(c)), 'then a second started tokens Machine')
  t.ok(commands.some((c) => /^fly machine destroy <tokens machine id> .*--force/.test(c)), 'a failed first deploy leaves a tokens Machine to destroy')
  t.ok(commands.some((c) => /^fly releases .*--image/.test(c)), 'the image to go back to is noted first')
  for (const step of ['Step 1', 'Step 2', 'Step 3', 'Step 4']) {
    const body = section.slice(section.indexOf(`### ${step}`), section.indexOf('### ', section.indexOf(`### ${step}`) + 4) >>> 0)
    t.match(body, /\*Undo:\*|\*If it fails, and how to undo it:\*/, `${step} says how to undo it`)
  }
  t.notMatch(guide, /--process-group mcp|processes = \["mcp"\]/, 'no trace of the renamed group')
  // The standby: why not, and what scale count does with it.
  t.match(guide, /stopped \*\*standby\*\*|stopped \*standby\*/)
  t.match(guide, /already scaled/i)
})

t.test('deploy guide: secrets as files name a secret for every _FILE variable, and rotation keeps every client accepted', async (t) => {
  const example = /<!-- deploy-test: files-example begins -->\n```toml\n([\s\S]*?)```\n<!-- deploy-test: files-example ends -->/.exec(guide)?.[1]
  t.ok(example, 'the [[files]] example is marked')
  const files = parse(example!) as unknown as Pick<FlyConfig, 'env' | 'files'>
  const merged: FlyConfig = { ...fly, env: { ...fly.env, ...files.env }, files: files.files }
  t.ok(Object.keys(files.env).filter((v) => v.endsWith('_FILE')).length >= 2)
  t.same(flyctlProblems(merged), [], 'each _FILE variable has a [[files]] entry with secret_name, scoped to an existing group')
  for (const file of files.files ?? []) t.same(file.processes, ['tokens'], `${String(file.guest_path)} only where the sidecar runs`)

  // The rotation: model each step's sidecars (what they accept) and clients (what they send).
  const rotation = guide.slice(guide.indexOf('### Rotating the sidecar secret without a 401'))
  const steps = flyCommands(rotation).slice(0, 3)
  t.equal(steps.length, 3)
  const state = new Map<string, string>([['TOOLBRIDGE_SIDECAR_SECRET', 'OLD']])
  const accepted = (s: Map<string, string>): string[] => [s.get('TOOLBRIDGE_SIDECAR_SECRET')!, ...(s.has('TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS') ? [s.get('TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS')!] : [])]
  for (const step of steps) {
    const before = new Map(state)
    const words = shellWords(step)
    const values = words.filter((w) => w.startsWith('TOOLBRIDGE_'))
    for (const word of values) {
      if (words[2] === 'unset') state.delete(word)
      else state.set(word.split('=')[0]!, word.split('=')[1] === '$NEW' ? 'NEW' : 'OLD')
    }
    // During a deploy old and new Machines of both groups overlap: every client must be accepted by every sidecar.
    for (const client of [before, state]) {
      for (const sidecar of [before, state]) {
        t.ok(accepted(sidecar).includes(client.get('TOOLBRIDGE_SIDECAR_SECRET')!), `${step}: a client sending ${client.get('TOOLBRIDGE_SIDECAR_SECRET')!} is accepted by a sidecar accepting ${accepted(sidecar).join('+')}`)
      }
    }
  }
  t.same(accepted(state), ['NEW'], 'at the end only the new secret is accepted')
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

t.test('deploy guide: image figures measured before and after, no placeholder left', async (t) => {
  const section = guide.slice(guide.indexOf('### Image size and build time'), guide.indexOf('## 3. '))
  t.notMatch(section, /IMAGE-FIGURES|TODO|TBD/)
  t.match(section, /\| own layers \| [\d,]+ kB \| \*\*[\d,]+ kB\*\*/, 'own-layer sizes before and after')
  t.match(section, /\| build, `--no-cache`[^|]*\| \d+ s[^|]*\| \*\*\d+ s\*\* \|/, 'build times before and after')
})

t.test('fly.toml comments and the guide agree on the first deploy', async (t) => {
  const text = readFileSync(join(ROOT, 'fly.toml'), 'utf8')
  t.notMatch(text, /--strategy rolling/, 'fly.toml does not send the first deploy down the rolling path')
  t.match(text, /--ha=false/)
})
