import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { SECRETS_FILE, SUITE_LOG_DIR } from '../fixtures/suite-paths.js'

/**
 * The log text plus every byte array and base64 run in it, decoded: a secret
 * can hide in a serialized Buffer (Node's rawPacket) or a Basic header.
 */
function decodedForScan (text: string): string {
  const parts = [text]
  for (const match of text.matchAll(/\[(\d{1,3}(?:,\d{1,3}){7,})\]/g)) {
    parts.push(Buffer.from(match[1]!.split(',').map(Number)).toString('latin1'))
  }
  for (const match of text.matchAll(/[A-Za-z0-9+/_-]{12,}={0,2}/g)) {
    // Node's base64 decoder reads both alphabets; the run may start a few characters early.
    for (let offset = 0; offset < 4; offset++) parts.push(Buffer.from(match[0].slice(offset), 'base64').toString('latin1'))
  }
  return parts.join('\n')
}

// Runs after every test file (tap's `after`): scans all that the sidecar logged during the suite
// for every token and secret the tests used.
t.test('no token or secret in anything the sidecar logged during the suite', async (t) => {
  t.ok(existsSync(SECRETS_FILE), 'the suite registered the secrets it used')
  const secrets = [...new Set(readFileSync(SECRETS_FILE, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as string))]
  const logs = readdirSync(SUITE_LOG_DIR).filter((name) => name.endsWith('.log'))
  const text = logs.map((name) => readFileSync(join(SUITE_LOG_DIR, name), 'utf8')).join('')
  const lines = text.split('\n').filter(Boolean).length
  // Each tier runs this scan over its own files (npm test about 500 secrets, npm run test:e2e about 20): enough to be a real scan.
  t.ok(secrets.length >= 10, `${secrets.length} secrets and tokens to look for`)
  t.ok(lines >= 100, `${lines} log lines from ${logs.length} files`)
  t.ok(text.includes('Auth0 token refreshed'), 'the logs are the real thing')

  const probe = 'probe-secret-in-disguise'
  t.ok(decodedForScan(JSON.stringify({ err: { rawPacket: { type: 'Buffer', data: [...Buffer.from(`Bearer ${probe}`)] } } })).includes(probe), 'the scan sees through byte arrays')
  t.ok(decodedForScan(`"authorization":"Basic ${Buffer.from(`id:${probe}`).toString('base64')}"`).includes(probe), 'and base64')
  t.ok(decodedForScan(`x${Buffer.from(`{"s":"${probe}"}`).toString('base64url')}`).includes(probe), 'and base64url')

  const scanned = decodedForScan(text)
  const leaked = secrets.filter((secret) => scanned.includes(secret))
  t.same(leaked.map((s) => `${s.slice(0, 4)}… (${s.length} chars)`), [], 'no secret appears in any log line, decoded or not')
})
