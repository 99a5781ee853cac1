import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { SECRETS_FILE, SUITE_LOG_DIR } from '../fixtures/suite-paths.js'

// Runs after every test file (tap's `after`): scans all that the sidecar logged during the suite
// for every token and secret the tests used.
t.test('no token or secret in anything the sidecar logged during the suite', async (t) => {
  t.ok(existsSync(SECRETS_FILE), 'the suite registered the secrets it used')
  const secrets = [...new Set(readFileSync(SECRETS_FILE, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as string))]
  const logs = readdirSync(SUITE_LOG_DIR).filter((name) => name.endsWith('.log'))
  const text = logs.map((name) => readFileSync(join(SUITE_LOG_DIR, name), 'utf8')).join('')
  const lines = text.split('\n').filter(Boolean).length
  t.ok(secrets.length >= 20, `${secrets.length} secrets and tokens to look for`)
  t.ok(lines >= 100, `${lines} log lines from ${logs.length} files`)
  t.ok(text.includes('Auth0 token refreshed'), 'the logs are the real thing')
  const leaked = secrets.filter((secret) => text.includes(secret))
  t.same(leaked.map((s) => `${s.slice(0, 4)}… (${s.length} chars)`), [], 'no secret appears in any log line')
})
