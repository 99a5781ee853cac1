import Fastify from 'fastify'
import t from 'tap'
import { secretGuard } from '../../src/http/require-secret.js'
import { bearerCredentials, SidecarSecret } from '../../src/http/sidecar-secret.js'
import { captureLogger, registerSecret } from '../fixtures/suite-log.js'

registerSecret('guard-secret-0123456789abcdef0123')

t.test('matches exactly, and a new secret replaces the old one', async (t) => {
  const secret = new SidecarSecret('first-secret-0123456789abcdef0123')
  t.ok(secret.matches('first-secret-0123456789abcdef0123'))
  t.notOk(secret.matches('first-secret-0123456789abcdef012'))
  t.notOk(secret.matches(''))
  secret.set('second-secret-0123456789abcdef0123')
  t.notOk(secret.matches('first-secret-0123456789abcdef0123'))
  t.ok(secret.matches('second-secret-0123456789abcdef0123'))
})

t.test('bearer credentials', async (t) => {
  t.equal(bearerCredentials('Bearer abc'), 'abc')
  t.equal(bearerCredentials('bEaReR   abc  '), 'abc')
  t.equal(bearerCredentials(undefined), undefined)
  t.equal(bearerCredentials('Bearer'), undefined)
  t.equal(bearerCredentials('Bearer  '), undefined)
  t.equal(bearerCredentials('Bearerabc'), undefined)
  t.equal(bearerCredentials('Basic abcdef'), undefined)
})

t.test('a previous secret is accepted alongside the current one until it is unset', async (t) => {
  const secret = new SidecarSecret('current-secret-0123456789abcdef0123', 'previous-secret-0123456789abcdef012')
  t.ok(secret.matches('current-secret-0123456789abcdef0123'))
  t.ok(secret.matches('previous-secret-0123456789abcdef012'))
  t.notOk(secret.matches('previous-secret-0123456789abcdef01'), 'a prefix of the previous one is not it')
  t.notOk(secret.matches('other-secret-0123456789abcdef012345'))
  // Differences whose bits do not overlap must not combine into a match.
  const bits = new SidecarSecret('a'.repeat(32), 'b'.repeat(32))
  t.notOk(bits.matches('c'.repeat(32)), '"a"^"c" and "b"^"c" share no bit, and still no match')
  secret.setPrevious(undefined)
  t.notOk(secret.matches('previous-secret-0123456789abcdef012'), 'the grace period is over')
  t.ok(secret.matches('current-secret-0123456789abcdef0123'))
  secret.setPrevious('another-previous-0123456789abcdef01')
  t.ok(secret.matches('another-previous-0123456789abcdef01'))
})

t.test('secretGuard on its own (as another Fastify app would use it): the request\'s logger by default, no connection hook needed', async (t) => {
  const captured = captureLogger()
  const app = Fastify({ loggerInstance: captured.logger })
  t.teardown(() => app.close())
  const allowed = secretGuard(new SidecarSecret('guard-secret-0123456789abcdef0123'), () => {})
  app.get('/x', (request, reply) => {
    if (allowed(request, reply)) void reply.send('in')
  })
  t.equal((await app.inject({ url: '/x', headers: { authorization: 'Bearer guard-secret-0123456789abcdef0123' } })).body, 'in')
  t.equal((await app.inject({ url: '/x' })).statusCode, 401)
  t.match(captured.lines().find((l) => l.event === 'auth_rejected'), { level: 'warn', reqId: String, url: '/x' })
})
