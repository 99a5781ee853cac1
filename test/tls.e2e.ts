import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { FakeAuth0 } from './fixtures/fake-auth0.js'
import { spawnSidecar, stopOnTeardown } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'
import { FIXTURES } from './fixtures/suite-paths.js'

// A token endpoint behind a private CA, on loopback: the sidecar trusts it only
// through NODE_EXTRA_CA_CERTS, which Node reads at start-up and undici honours.
const SECRET = 'tls-sidecar-secret-0123456789abcdefghijk'
registerSecret(SECRET)
const fixture = (name: string): string => join(FIXTURES, `tls/${name}`)
const tls = { key: readFileSync(fixture('server.key'), 'utf8'), cert: readFileSync(fixture('server.pem'), 'utf8') }

t.test('NODE_EXTRA_CA_CERTS: a token endpoint with a private CA\'s certificate is trusted', async (t) => {
  const auth0 = await FakeAuth0.start({ tls })
  t.teardown(() => auth0.close())
  t.match(auth0.tokenUrl, /^https:\/\/127\.0\.0\.1:\d+\/oauth\/token$/)
  const sidecar = spawnSidecar({ ...auth0.sidecarEnv(SECRET), TOOLBRIDGE_SIDECAR_PORT: '0', NODE_EXTRA_CA_CERTS: fixture('ca.pem') })
  stopOnTeardown(t, sidecar)
  const port = await sidecar.listening
  await sidecar.waitFor((l) => l.event === 'token_refreshed')
  const res = await fetch(`http://127.0.0.1:${port!}/token`, { headers: { authorization: `Bearer ${SECRET}` } })
  t.equal(res.status, 200)
  t.equal(((await res.json()) as { access_token: string }).access_token, auth0.issued[0])
})

t.test('without it, the TLS failure is logged with its message, not only its code, and names the CA setting', async (t) => {
  const auth0 = await FakeAuth0.start({ tls })
  t.teardown(() => auth0.close())
  const sidecar = spawnSidecar({ ...auth0.sidecarEnv(SECRET), TOOLBRIDGE_SIDECAR_PORT: '0' })
  stopOnTeardown(t, sidecar)
  const port = await sidecar.listening
  const failed = await sidecar.waitFor((l) => l.event === 'token_refresh_failed')
  t.match(failed, {
    level: 'warn',
    error_kind: 'network_error',
    code: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    // Node 24 adds a hint about --use-system-ca to the message.
    msg: /token request to 127\.0\.0\.1:\d+ failed: unable to verify the first certificate[^(]*\(UNABLE_TO_VERIFY_LEAF_SIGNATURE\); a private CA: set NODE_EXTRA_CA_CERTS to a PEM file with its certificate$/
  })
  t.equal(auth0.tokenRequests(), 0, 'nothing reached the endpoint')
  const health = await fetch(`http://127.0.0.1:${port!}/healthz`)
  t.equal(health.status, 503)
  t.match(await health.json(), { status: 'unavailable', last_refresh: { error: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', error_kind: 'network_error' } })
})
