import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { spawnSidecar, stopOnTeardown } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'
import { FIXTURES, ROOT } from './fixtures/suite-paths.js'
import { inTerminal } from './fixtures/terminal.js'

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
  const build = join(ROOT, 'scripts/build.mjs')
  const { validatorSource } = await import(build) as { validatorSource: () => Promise<string> }
  t.equal(readFileSync(join(ROOT, 'src/config/env-validator.ts'), 'utf8'), await validatorSource(), 'run npm run build and commit src/config/env-validator.ts')
})

const RECORD_FLAGS = ['--import', join(FIXTURES, 'record-v8-flags.mjs')]

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
