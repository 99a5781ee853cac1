import t from 'tap'
import { SecretScrubber } from '../src/secret-scrubber.js'
import { until } from './fixtures/fake-clock.js'
import { startSidecarApp } from './fixtures/sidecar-app.js'
import { registerSecret } from './fixtures/suite-log.js'

/** RFC 6749 §2.3.1: each part form-encoded, then `id:secret` base64-encoded. */
const form = (value: string): string => new URLSearchParams([['', value]]).toString().slice(1)
const basic = (id: string, secret: string, encode = form): string => Buffer.from(`${encode(id)}:${encode(secret)}`).toString('base64')

t.test('a Basic credential is scrubbed in every form an echo may show it', async (t) => {
  const secret = 'Zq8+r/Wm~x y&z=0123456789abcdefghij'
  const scrubber = new SecretScrubber()
  scrubber.add(secret)
  // Ids of every length modulo 3, so the secret starts at every alignment inside the base64.
  for (const id of ['c', 'cl', 'cli', 'client-id-0123456789']) {
    const plain = Buffer.from(`${form(id)}:${form(secret)}`)
    const raw = Buffer.from(`${id}:${secret}`)
    const forms = {
      'base64 of form-encoded parts': plain.toString('base64'),
      'without padding': plain.toString('base64').replace(/=+$/, ''),
      base64url: plain.toString('base64url'),
      'base64url with padding': plain.toString('base64url') + '='.repeat((4 - plain.toString('base64url').length % 4) % 4),
      'base64 of the raw parts': raw.toString('base64'),
      'base64url of the raw parts': raw.toString('base64url')
    }
    for (const [name, value] of Object.entries(forms)) {
      const clean = scrubber.scrub(`{"error":"invalid_client","error_description":"bad header: Authorization: Basic ${value}"}`, 1000)
      t.match(clean, /\[redacted\]/, `${name}, id ${id}`)
      // Left of the mark: only the id's encoding and a character it shares with the secret; right: an edge and padding.
      const [before, after] = clean.replace(/^.*Basic /, '').replace(/"\}$/, '').split('[redacted]') as [string, string]
      t.ok(before.length <= Math.ceil((form(id).length + 1) * 4 / 3) + 1, `${name}, id ${id}: only the id before (${before})`)
      t.ok(after.length <= 4, `${name}, id ${id}: only an edge after (${after})`)
    }
  }
})

t.test('a value too short to hunt inside base64 (it would match ordinary text) is still scrubbed in its own encodings', async (t) => {
  const scrubber = new SecretScrubber()
  scrubber.add('abc')
  t.equal(scrubber.scrub('x YWJj y abc', 100), 'x [redacted] y [redacted]')
})

t.test('a token endpoint that echoes the Authorization header: no Basic credential reaches a log', async (t) => {
  const clientSecret = 'basic-echo-client-secret/with+odd~chars-0123456789'
  const clientId = 'echo-client'
  const credential = basic(clientId, clientSecret)
  registerSecret(clientSecret, credential, credential.replace(/=+$/, ''), Buffer.from(`${clientId}:${clientSecret}`).toString('base64url'))
  const secret = 'basic-echo-sidecar-secret-0123456789abcdef'
  registerSecret(secret)
  const echo = `Authorization: Basic ${credential}`
  const { lines, attempts, clock, auth0 } = await startSidecarApp(t, {
    secret,
    auth0: { clientId, clientSecret },
    env: { TOOLBRIDGE_AUTH0_CLIENT_AUTH: 'client_secret_basic' },
    first: [
      { kind: 'status', status: 400, body: { error: 'invalid_request', error_description: `you sent ${echo}` } },
      { kind: 'status', status: 502, body: `<html><pre>${echo}\r\nAuthorization: Basic ${credential.replace(/=+$/, '')}</pre></html>`, contentType: 'text/html' }
    ]
  })
  t.equal(auth0.requests[0]!.headers.authorization, `Basic ${credential}`, 'the stand-in saw the credential it echoes')
  await clock.advance(clock.pendingDelays()[0]!)
  await until(() => attempts() === 2)
  const failures = lines().filter((l) => l.event === 'token_refresh_failed')
  t.equal(failures.length, 2)
  t.match(failures[0], { error_description: /you sent Authorization: Basic .*\[redacted\]/ })
  t.match(failures[1], { body_excerpt: /\[redacted\]/ })
  const text = JSON.stringify(lines())
  for (const form of [credential, credential.replace(/=+$/, ''), credential.slice(4, 40), clientSecret]) t.notOk(text.includes(form), `no ${form.slice(0, 12)}…`)
})
