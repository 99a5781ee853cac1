import t from 'tap'
import { bearerCredentials, SidecarSecret } from '../../src/http/sidecar-secret.js'

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
