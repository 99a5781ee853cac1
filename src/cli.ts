#!/usr/bin/env node
import module from 'node:module'
import { setFlagsFromString } from 'node:v8'
import { healthcheck } from './healthcheck.js'

// Node 22.1+ caches compiled code between starts (the image runs Node 24), so a
// restart loads Fastify, undici and the rest faster. It must run before they load:
// the server is imported on demand, which also keeps --version and the
// healthcheck probe (Node's built-ins only, in this file's bundle) from loading it.
/* c8 ignore next -- present from Node 22.1 on; CI runs the suite on Node 20 and 24 */
;(module as { enableCompileCache?: () => unknown }).enableCompileCache?.()

/**
 * undici parses HTTP with WebAssembly. Left to itself, V8 (Node 20) recompiles
 * that parser with its optimizing tier on background threads some 40 ms after
 * start-up: a 35 MB peak, for a parser that reads a few token responses an
 * hour, which its baseline tier does as well. Set before undici loads; both
 * flags, as dynamic tiering alone still tiers up.
 */
const WASM_FLAGS = ['--no-wasm-dynamic-tiering', '--no-wasm-tier-up'] as const

type Env = Readonly<Record<string, string | undefined>>

const USAGE = `usage: token-sidecar [--dev | healthcheck]

  (no argument)  serve tokens from the Auth0 client credentials in the environment
  --dev          serve tokens from an embedded local issuer (loopback only, not for production)
  healthcheck    exit 0 if the running sidecar's /healthz answers 200 within 3 s, else 1
  --help         show this text
  --version      show the version

Configuration is read from the environment; see the README.`

async function main (argv: string[], env: Env): Promise<number | undefined> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`)
    return 0
  }
  if (argv.length === 1 && argv[0] === '--version') {
    process.stdout.write(`${(await import('./version.js')).VERSION}\n`)
    return 0
  }
  if (argv.length === 1 && argv[0] === 'healthcheck') return healthcheck(env)
  if (argv.length === 0 || (argv.length === 1 && argv[0] === '--dev')) {
    for (const flag of WASM_FLAGS) setFlagsFromString(flag)
    const { serve, serveDev } = await import('./serve.js')
    return argv.length === 0 ? serve(env) : serveDev(env)
  }
  process.stderr.write(`token-sidecar: unknown argument ${JSON.stringify(argv.join(' '))}\n${USAGE}\n`)
  return 2
}

const code = await main(process.argv.slice(2), process.env)
if (code !== undefined) process.exitCode = code
