import { join } from 'node:path'
import t, { type Test } from 'tap'
import { request } from 'undici'
import { FakeAuth0 } from './fixtures/fake-auth0.js'
import { spawnSidecar, stopOnTeardown } from './fixtures/spawn-sidecar.js'
import { registerSecret } from './fixtures/suite-log.js'
import { FIXTURES } from './fixtures/suite-paths.js'

const SECRET = 'process-hardening-secret-0123456789abcdef'
registerSecret(SECRET)
const STEP_CLOCK = join(FIXTURES, 'step-clock.mjs')

async function getToken (port: number) {
  const res = await request(`http://127.0.0.1:${port}/token`, { headers: { authorization: `Bearer ${SECRET}` } })
  const body = await res.body.json() as Record<string, unknown>
  return { status: res.statusCode, body }
}

async function steppedSidecar (t: Test, stepMs: number) {
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  const sidecar = spawnSidecar(
    { ...auth0.sidecarEnv(SECRET), TOOLBRIDGE_SIDECAR_PORT: '0', STEP_CLOCK_MS: String(stepMs) },
    [],
    { nodeArgs: [`--import=${STEP_CLOCK}`] }
  )
  stopOnTeardown(t, sidecar)
  const port = (await sidecar.listening)!
  await sidecar.waitFor((l) => l.event === 'token_refreshed')
  return { auth0, sidecar, port }
}

t.test('the real sidecar: wall clock stepped forward two days, /token serves a new token within seconds', async (t) => {
  const stepMs = 2 * 86_400_000
  const { auth0, sidecar, port } = await steppedSidecar(t, stepMs)
  const before = await getToken(port)
  t.equal(before.status, 200)

  const steppedAt = Date.now()
  sidecar.child.kill('SIGWINCH')
  const jump = await sidecar.waitFor((l) => l.event === 'clock_jump', 5000)
  t.match(jump, { level: 'warn', direction: 'forward', action: 'refresh' })
  t.ok(Math.abs(Number(jump.step_ms) - stepMs) < 1000, `step of ${String(jump.step_ms)} ms logged`)
  await sidecar.waitFor((l) => l.event === 'token_refreshed' && l.trigger === 'clock_jump', 5000)
  const after = await getToken(port)
  t.equal(after.status, 200, '/token answers 200')
  t.not(after.body.access_token, before.body.access_token, 'with a new token')
  t.ok(Number(after.body.expires_in) >= 86398 && Number(after.body.expires_in) <= 86400, `whose lifetime agrees with both clocks (${String(after.body.expires_in)} s)`)
  t.ok(Date.now() - steppedAt < 5000, `${Date.now() - steppedAt} ms after the step`)
  t.equal(auth0.tokenRequests(), 2, 'one fetch for the step, no more')
})

t.test('the real sidecar: wall clock stepped back an hour, the held token keeps being served and nothing is fetched', async (t) => {
  const stepMs = -3_600_000
  const { auth0, sidecar, port } = await steppedSidecar(t, stepMs)
  const before = await getToken(port)
  t.equal(before.status, 200)

  sidecar.child.kill('SIGWINCH')
  const jump = await sidecar.waitFor((l) => l.event === 'clock_jump', 5000)
  t.match(jump, { direction: 'backward', action: 'none' })
  t.ok(Math.abs(Number(jump.step_ms) - stepMs) < 1000, `step of ${String(jump.step_ms)} ms logged`)
  const after = await getToken(port)
  t.equal(after.status, 200, '/token answers 200')
  t.equal(after.body.access_token, before.body.access_token, 'the same token: the monotonic deadline still governs')
  t.ok(Number(after.body.expires_in) <= Number(before.body.expires_in), `and its lifetime did not grow with the step (${String(after.body.expires_in)} s)`)
  t.equal(auth0.tokenRequests(), 1, 'no fetch for a backward step')
})

t.test('SIGTERM while a request waits on a hanging token endpoint: 503 at once, exit 0', async (t) => {
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  auth0.enqueue({ kind: 'hang' })
  const sidecar = spawnSidecar({ ...auth0.sidecarEnv(SECRET), TOOLBRIDGE_SIDECAR_PORT: '0', TOOLBRIDGE_AUTH0_TIMEOUT_SECONDS: '60' })
  stopOnTeardown(t, sidecar)
  const port = (await sidecar.listening)!
  const waiting = getToken(port)
  // Let the request reach the handler and wait on the fetch.
  await new Promise((resolve) => setTimeout(resolve, 300))
  const sentAt = Date.now()
  sidecar.child.kill('SIGTERM')
  const answer = await waiting
  const answeredIn = Date.now() - sentAt
  t.equal(answer.status, 503)
  t.match(answer.body, { error: 'token_unavailable', error_description: 'the sidecar is shutting down' })
  t.ok(answeredIn < 1000, `answered ${answeredIn} ms after SIGTERM`)
  const exit = await sidecar.exited
  t.equal(exit.code, 0, 'a clean exit')
  t.ok(Date.now() - sentAt < 2000, 'well inside the shutdown budget')
})
