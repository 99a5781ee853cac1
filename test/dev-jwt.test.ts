import { generateKeyPairSync } from 'node:crypto'
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose'
import t from 'tap'
import { request } from 'undici'
import { startDevIssuer } from '../src/dev/dev-issuer.js'
import { signRs256 } from '../src/dev/jwt.js'
import { registerSecret } from './fixtures/suite-log.js'

t.test('signRs256 makes a JWS that jose verifies, with the header Auth0 sends', async (t) => {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const token = await signRs256({ aud: 'https://api.example', exp: 2_000_000_000 }, privateKey, 'kid-1')
  registerSecret(token)
  t.same(decodeProtectedHeader(token), { alg: 'RS256', typ: 'JWT', kid: 'kid-1' })
  const { payload } = await jwtVerify(token, publicKey, { audience: 'https://api.example', currentDate: new Date(1_900_000_000_000) })
  t.same(payload, { aud: 'https://api.example', exp: 2_000_000_000 })
})

t.test('the dev issuer\'s tokens verify against its published JWKS, as an API would check them', async (t) => {
  const issuer = await startDevIssuer({ clientId: 'dev', clientSecret: 'dev-secret', audiences: ['https://api.example'], lifetimeSeconds: 120 })
  t.teardown(() => issuer.close())
  const res = await request(issuer.tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'grant_type=client_credentials&client_id=dev&client_secret=dev-secret&audience=https%3A%2F%2Fapi.example' })
  const { access_token: token } = await res.body.json() as { access_token: string }
  registerSecret(token)
  const base = issuer.tokenUrl.replace('/oauth/token', '/')
  const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL('.well-known/jwks.json', base)), { issuer: base, audience: 'https://api.example' })
  t.match(payload, { sub: 'dev@clients', azp: 'dev', gty: 'client-credentials' })
  t.equal(payload.exp! - payload.iat!, 120)
})
