// What a person at a terminal sees: dev mode pretty-printed, production JSON.
// (Without pino-pretty installed, as in the image: lean.e2e.ts.)
import t from 'tap'
import { CLI } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'
import { inTerminal } from './fixtures/terminal.js'

const STATIC = { TOOLBRIDGE_JWT_TOKEN: 'terminal-static-token', TOOLBRIDGE_SIDECAR_SECRET: 'terminal-test-sidecar-secret-0123456789abcdef', TOOLBRIDGE_SIDECAR_PORT: '0' }
registerSecret(STATIC.TOOLBRIDGE_JWT_TOKEN, STATIC.TOOLBRIDGE_SIDECAR_SECRET)

t.test('dev mode in a terminal prints through pino-pretty; production in a terminal stays JSON', async (t) => {
  const dev = await inTerminal(t, CLI, ['--dev'], { TOOLBRIDGE_SIDECAR_PORT: '0' }, /Auth0 token refreshed/)
  t.match(dev, /\] \S*WARN\S* \(token-sidecar\): \S*DEV MODE/, 'a pretty line: time, level, name, message')
  t.notMatch(dev, /^\{"level"/m, 'no JSON line')

  const prod = await inTerminal(t, CLI, [], STATIC, /Server listening/)
  t.match(prod, /^\{"level":"info",.*"msg":"Server listening at http:\/\/127\.0\.0\.1:\d+"\}\r?$/m, 'JSON lines')
})
