import t from 'tap'
import { loadConfig } from '../src/config/load-config.js'
import { createSidecar } from '../src/sidecar.js'
import { FakeAuth0 } from './fixtures/fake-auth0.js'
import { FakeClock, until } from './fixtures/fake-clock.js'
import { MemoryFleetStore } from './fixtures/memory-store.js'
import { captureLogger, registerSecret } from './fixtures/suite-log.js'

const SECRET = 'composition-test-secret-0123456789abcdef'
registerSecret(SECRET)

// createSidecar composes the token sources (src/tokens.ts), the rotation
// (src/config/rotation.ts) and the apps: two sidecars built by it over one
// store, on one fake clock and its timers, share one token per lifetime.
t.test('two composed sidecars over one store, on injected clock and timers: one upstream request per lifetime', async (t) => {
  const auth0 = await FakeAuth0.start({ expiresIn: 600 })
  t.teardown(() => auth0.close())
  const clock = new FakeClock(Date.now())
  const server = new MemoryFleetStore({ clock, timers: clock })
  const env = { ...auth0.sidecarEnv(SECRET), TOOLBRIDGE_REFRESH_BUFFER_SECONDS: '60' }
  const members = [server, server.connect()].map((store, i) => {
    const captured = captureLogger()
    const sidecar = createSidecar(loadConfig(env), captured.logger, { tokenStore: store, clock, timers: clock, random: () => i / 2 })
    t.teardown(() => sidecar.app.close())
    return { sidecar, lines: captured.lines }
  })
  const settled = (m: typeof members[number]): number => m.lines().filter((l) => l.event === 'token_refreshed').length
  members[0]!.sidecar.tokens.start()
  await until(() => settled(members[0]!) === 1)
  members[1]!.sidecar.tokens.start()
  await until(() => settled(members[1]!) === 1)
  t.equal(auth0.tokenRequests(), 1, 'the second adopted the first one\'s token from the store')
  t.match(members[1]!.lines().find((l) => l.event === 'token_refreshed'), { source: 'store' })
  t.equal(members[1]!.sidecar.tokens.default.current()?.accessToken, members[0]!.sidecar.tokens.default.current()?.accessToken)

  // The refresh timers run on the injected timers. Jitter puts the second's refresh first
  // (540 s less 27 s): it fetches; the first's, at 540 s, adopts what it wrote.
  await clock.advance(520_000)
  await until(() => settled(members[1]!) === 2)
  t.equal(settled(members[0]!), 1, 'the first has not refreshed yet')
  await clock.advance(30_000)
  await until(() => settled(members[0]!) === 2)
  t.match(members[0]!.lines().filter((l) => l.event === 'token_refreshed')[1], { source: 'store' })
  t.equal(auth0.tokenRequests(), 2, 'one upstream request for the second lifetime')
  t.equal(members[1]!.sidecar.tokens.default.current()?.accessToken, members[0]!.sidecar.tokens.default.current()?.accessToken)

  // A store that goes away: the composed sidecar reports it (health, failures) and fetches directly.
  server.down = true
  await members[0]!.sidecar.tokens.default.forceRefresh(undefined)
  t.equal(auth0.tokenRequests(), 3, 'fetched directly while the store is down')
  t.ok(server.failures.length > 0, 'the store\'s failure reached the connection the sidecar was given')
  const health = await members[0]!.sidecar.app.inject({ url: '/healthz' })
  t.match(health.json(), { status: 'degraded', token_store: { status: 'unavailable' } })
})
