import { execFileSync, spawn } from 'node:child_process'
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { CLI, spawnSidecar, stopOnTeardown } from './fixtures/spawn-sidecar.js'
import { recordOutput, registerSecret } from './fixtures/suite-log.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const SECRET = 'lean-test-sidecar-secret-0123456789abcdef'
const STATIC = { TOOLBRIDGE_JWT_TOKEN: 'lean-static-token', TOOLBRIDGE_SIDECAR_SECRET: SECRET, TOOLBRIDGE_SIDECAR_PORT: '0' }
registerSecret(SECRET)
registerSecret(STATIC.TOOLBRIDGE_JWT_TOKEN)

interface Meta { outputs: Record<string, { entryPoint?: string, inputs: Record<string, unknown>, imports: Array<{ path: string, kind: string, external?: boolean }> }> }

t.test('the bundle loads what only some configurations need on demand, never up front', async (t) => {
  const meta = JSON.parse(readFileSync(join(ROOT, 'dist/bundle-meta.json'), 'utf8')) as Meta
  const outputs = meta.outputs
  /** Every input an output loads before its code runs: itself and its static imports, transitively. */
  const loadedWith = (output: string, seen = new Set<string>()): Set<string> => {
    if (seen.has(output)) return new Set()
    seen.add(output)
    const inputs = new Set(Object.keys(outputs[output]!.inputs))
    for (const i of outputs[output]!.imports) {
      if (i.kind === 'import-statement' && outputs[i.path] !== undefined) for (const input of loadedWith(i.path, seen)) inputs.add(input)
    }
    return inputs
  }
  const packages = (inputs: Set<string>) => new Set([...inputs].filter((i) => i.startsWith('node_modules/')).map((i) => i.split('/').slice(1, i.split('/')[1]!.startsWith('@') ? 3 : 2).join('/')))
  const chunkOf = (entry: string) => Object.keys(outputs).find((o) => outputs[o]!.entryPoint === entry)!

  const cliInputs = loadedWith('dist/cli.js')
  t.ok(cliInputs.has('src/healthcheck.ts'), 'the health probe is in the CLI entry')
  t.same([...packages(cliInputs)], [], 'which loads no package: the probe, --help and --version use Node built-ins only')
  const serverInputs = loadedWith(chunkOf('src/serve.ts'))
  const server = packages(serverInputs)
  t.ok(serverInputs.has('node_modules/undici/lib/dispatcher/pool.js'), 'the server loads undici\'s Pool')
  for (const part of ['index.js', 'lib/web/fetch/index.js', 'lib/web/websocket/', 'lib/web/eventsource/', 'lib/cache/', 'lib/mock/']) {
    t.notOk([...serverInputs].some((i) => i.startsWith(`node_modules/undici/${part}`)), `and not undici/${part}`)
  }
  for (const pkg of ['fastify', 'undici', 'pino']) t.ok(server.has(pkg), `the server loads ${pkg}`)
  for (const pkg of ['ioredis', 'jose', 'pino-pretty']) t.notOk(server.has(pkg), `the server does not load ${pkg} up front`)
  const everything = new Set(Object.values(outputs).flatMap((o) => Object.keys(o.inputs)))
  t.ok([...everything].some((i) => i.startsWith('node_modules/ioredis/')), 'ioredis is in the bundle, in a chunk of its own')
  t.ok([...everything].some((i) => i.startsWith('node_modules/jose/')), 'jose too')
  t.notOk([...everything].some((i) => i.startsWith('node_modules/pino-pretty/')), 'pino-pretty, a devDependency, is never bundled')
})

t.test('the committed env validator is what the build compiles from src/config/schema.ts', async (t) => {
  const build = '../scripts/build.mjs'
  const { validatorSource } = await import(build) as { validatorSource: () => Promise<string> }
  t.equal(readFileSync(join(ROOT, 'src/config/env-validator.ts'), 'utf8'), await validatorSource(), 'run npm run build and commit src/config/env-validator.ts')
})

const RECORD_FLAGS = ['--import', fileURLToPath(new URL('./fixtures/record-v8-flags.mjs', import.meta.url))]

t.test('the server keeps undici\'s WebAssembly parser on V8\'s baseline tier; the probe and --version set no flag', async (t) => {
  const sidecar = spawnSidecar(STATIC, [], { nodeArgs: RECORD_FLAGS })
  stopOnTeardown(t, sidecar)
  t.ok(await sidecar.listening)
  t.match(sidecar.stderr(), /v8-flag: --no-wasm-dynamic-tiering\nv8-flag: --no-wasm-tier-up\n/)
  for (const args of [['healthcheck'], ['--version']]) {
    const run = spawnSidecar({ TOOLBRIDGE_SIDECAR_PORT: '1' }, args, { nodeArgs: RECORD_FLAGS })
    await run.exited
    t.notMatch(run.stderr(), /v8-flag/, args[0])
  }
})

/** Runs the CLI with stdout on a terminal (util-linux `script`) until `until` matches its output, then SIGTERM. */
async function inTerminal (t: Test, cli: string, args: string[], env: Record<string, string>, until: RegExp): Promise<string> {
  const command = ['exec', process.execPath, cli, ...args].map((a) => `'${a}'`).join(' ')
  const child = spawn('script', ['-qfec', command, '/dev/null'], {
    env: { PATH: process.env.PATH ?? '', ...(process.env.NODE_V8_COVERAGE === undefined ? {} : { NODE_V8_COVERAGE: process.env.NODE_V8_COVERAGE }), ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => { out += chunk })
  const closed = new Promise((resolve) => child.once('close', resolve))
  for (let i = 0; i < 1000 && !until.test(out); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  // script's child is the CLI itself (exec): end it gracefully, so it writes its coverage.
  const pid = Number(execFileSync('pgrep', ['-P', String(child.pid)], { encoding: 'utf8' }).trim())
  process.kill(pid, 'SIGTERM')
  await closed
  // Dev mode prints its generated secret in the curl line: keep it out of the suite log.
  recordOutput(out.split('\n').filter((l) => !l.startsWith('curl ')).join('\n'))
  t.ok(until.test(out), `saw ${String(until)}`)
  return out
}

t.test('dev mode in a terminal prints through pino-pretty; production in a terminal stays JSON', async (t) => {
  const dev = await inTerminal(t, CLI, ['--dev'], { TOOLBRIDGE_SIDECAR_PORT: '0' }, /Auth0 token refreshed/)
  t.match(dev, /\] \S*WARN\S* \(token-sidecar\): \S*DEV MODE/, 'a pretty line: time, level, name, message')
  t.notMatch(dev, /^\{"level"/m, 'no JSON line')

  const prod = await inTerminal(t, CLI, [], STATIC, /Server listening/)
  t.match(prod, /^\{"level":"info",.*"msg":"Server listening at http:\/\/127\.0\.0\.1:\d+"\}\r?$/m, 'JSON lines')
})

t.test('dev mode in a terminal without pino-pretty installed (a production image) prints JSON', async (t) => {
  // The bundle runs without node_modules; pino-pretty is the one package it leaves outside.
  const dir = mkdtempSync(join(tmpdir(), 'sidecar-bundle-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true })
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  // Its source maps point back at this checkout's src/, so its coverage counts.
  for (const name of readdirSync(join(dir, 'dist')).filter((n) => n.endsWith('.js.map'))) {
    const map = JSON.parse(readFileSync(join(dir, 'dist', name), 'utf8')) as { sources: string[] }
    map.sources = map.sources.map((source) => join(ROOT, 'dist', source))
    writeFileSync(join(dir, 'dist', name), JSON.stringify(map))
  }
  const out = await inTerminal(t, join(dir, 'dist/cli.js'), ['--dev'], { TOOLBRIDGE_SIDECAR_PORT: '0' }, /"msg":"Auth0 token refreshed"/)
  t.match(out, /^\{"level":"warn",.*"event":"dev_mode"/m)
})

t.test('prettyDestination: undefined (JSON lines) where pino-pretty cannot load', async (t) => {
  const missing = Object.assign(new Error('Cannot find package \'pino-pretty\''), { code: 'ERR_MODULE_NOT_FOUND' })
  const { prettyDestination } = await t.mockImport<typeof import('../src/logger.js')>('../src/logger.js', {
    'pino-pretty': { get default () { throw missing } }
  })
  t.equal(await prettyDestination(), undefined)
})
