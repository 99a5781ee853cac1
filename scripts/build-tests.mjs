// npm test's build: the product build (scripts/build.mjs) and the whole
// project's type check side by side, one per core, then the tests, src/ and
// sim/ compiled to JavaScript in dist-test/ with linked source maps, as borp
// runs TypeScript tests: tap then starts each test file as plain JavaScript
// instead of loading a TypeScript compiler into every test process (about
// 1.4 s of CPU each), and coverage still maps back to src/*.ts.
//
//   node scripts/build-tests.mjs [--no-typecheck]
//
// One file: `node scripts/build-tests.mjs --no-typecheck && npx tap dist-test/test/http/app.test.js`.
import { spawn } from 'node:child_process'
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = fileURLToPath(new URL('..', import.meta.url))
const OUT = `${root}dist-test`

function run (args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { cwd: root, stdio: 'inherit' })
    child.on('error', reject)
    child.on('exit', (code, signal) => code === 0
      ? resolve()
      : reject(new Error(`node ${args.join(' ')} failed (${signal ?? `exit ${code}`})`)))
  })
}

/** Every TypeScript file under the given top-level directories. */
function sources (...dirs) {
  return dirs.flatMap((dir) => readdirSync(`${root}${dir}`, { recursive: true })
    .map(String)
    .filter((name) => name.endsWith('.ts') && !name.endsWith('.d.ts'))
    .map((name) => `${root}${dir}/${name}`))
}

/** src/, sim/ and test/ as ES modules, file for file, the tree kept (tests import ../src/x.js). */
async function compileTests () {
  rmSync(OUT, { recursive: true, force: true })
  await build({
    entryPoints: sources('src', 'sim', 'test'),
    outdir: OUT,
    outbase: root,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    sourcemap: 'linked',
    logLevel: 'warning'
  })
  // src/version.ts reads the version from ../package.json.
  const { name, version } = JSON.parse(readFileSync(`${root}package.json`, 'utf8'))
  writeFileSync(`${OUT}/package.json`, `${JSON.stringify({ name, version, private: true, type: 'module' }, null, 2)}\n`)
}

/**
 * Tap compiles its plugins into its Test class, and `npm ci` installs the
 * default set, with the TypeScript loader and the module mocker. This project
 * leaves both out (package.json), and tap rebuilds on its first run, but only
 * after it has started that run's test processes with the default set; so it
 * is rebuilt here, before the first run, when the two differ.
 */
async function tapPlugins () {
  // Tap's config reads this process's arguments as tap's own: it sees none.
  process.argv.splice(2)
  // In this order: @tapjs/test imported first meets a circular import in @tapjs/core.
  const { TapConfig } = await import('@tapjs/config')
  const { signature } = await import('@tapjs/test')
  if (signature !== (await TapConfig.load()).pluginSignature) await run([`${root}node_modules/tap/dist/esm/run.mjs`, 'build'])
}

async function main () {
  const typecheck = !process.argv.includes('--no-typecheck')
  // The type check reads tap's types, which a rebuild of its plugins rewrites: it waits for that.
  const steps = [run([`${root}scripts/build.mjs`]), tapPlugins().then(() => typecheck && typeCheck())]
  const failed = (await Promise.allSettled(steps)).find((step) => step.status === 'rejected')
  if (failed !== undefined) throw failed.reason
  await compileTests()
}

/** Incremental, as `npm run typecheck`: a second run with nothing changed takes a third of the time. */
function typeCheck () {
  return run([`${root}node_modules/typescript/bin/tsc`, '-p', `${root}tsconfig.json`, '--noEmit', '--incremental', '--tsBuildInfoFile', `${root}node_modules/.cache/tsc/typecheck.tsbuildinfo`])
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main()
