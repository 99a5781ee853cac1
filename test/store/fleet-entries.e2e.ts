import t from 'tap'
import { Redis } from 'ioredis'
import { EntryCipher } from '../../src/store/entry-cipher.js'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'
import { fleet, stopAll, tokenOf } from '../fixtures/fleet.js'
import { RedisServer } from '../fixtures/redis-server.js'
import { registerSecret } from '../fixtures/suite-log.js'

// Real sidecar processes, a real redis-server and one Auth0 stand-in on loopback.

t.test('restart all five while the stored token is valid: zero upstream requests', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  const members = await fleet(t, 5, auth0, redis.url)
  t.equal(auth0.tokenRequests(), 1)
  const served = await tokenOf(members[0]!)
  await stopAll(members)
  const restarted = await fleet(t, 5, auth0, redis.url)
  t.equal(auth0.tokenRequests(), 1, 'zero upstream requests for a restart')
  t.same(new Set(await Promise.all(restarted.map(tokenOf))), new Set([served]), 'the same token as before the restart')
  const metrics = await (await fetch(`http://127.0.0.1:${restarted[0]!.port}/metrics`)).text()
  t.match(metrics, /tokensidecar_token_store_reads_total\{audience="[^"]+",result="hit"\} 1/)
  t.match(metrics, /tokensidecar_tokens_obtained_total\{audience="[^"]+",source="store"\} 1/)
  t.notMatch(metrics, /tokensidecar_token_refresh_attempts_total\{[^}]*result="success"/, 'an adopted token is no upstream attempt')
})

t.test('planted and corrupt entries are ignored and counted, never served', async (t) => {
  const redis = await RedisServer.start()
  t.teardown(() => redis.stop())
  const auth0 = await FakeAuth0.start()
  t.teardown(() => auth0.close())
  // The first sidecar writes the entry; read its key, then plant over it.
  const [writer] = await fleet(t, 1, auth0, redis.url)
  const client = new Redis(redis.url)
  t.teardown(() => client.disconnect())
  const keys = await client.keys('tokensidecar:v1:*')
  t.equal(keys.length, 1, 'one entry')
  const key = keys[0]!
  t.match(key, /^tokensidecar:v1:[0-9a-f]{64}$/, 'a hash: no URL, client id or audience in the key')
  t.notMatch(await client.get(key), /eyJ|access_token/, 'the token is not readable in the store')
  t.ok(await client.pttl(key) > 86_000_000, 'the entry expires with the token')
  await stopAll([writer!])

  registerSecret('planted-token-value')
  const planted = new EntryCipher(Buffer.from('an-attacker-without-the-client-secret')).seal({ accessToken: 'planted-token-value', lifetimeMs: 3_600_000, issuedAt: Date.now() }, key)
  for (const [name, value] of [['another key', planted], ['corrupt', 'v1.Zm9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eA'], ['garbage', '\u0000\u00ff not an entry']]) {
    await client.set(key, value, 'PX', 3_600_000)
    const before = auth0.tokenRequests()
    const [member] = await fleet(t, 1, auth0, redis.url)
    const token = await tokenOf(member!)
    t.not(token, 'planted-token-value', `${name}: never served`)
    t.equal(auth0.tokenRequests() - before, 1, `${name}: fetched instead`)
    const metrics = await (await fetch(`http://127.0.0.1:${member!.port}/metrics`)).text()
    t.match(metrics, /tokensidecar_token_store_reads_total\{audience="[^"]+",result="undecryptable"\} [12]/, `${name}: counted`)
    await stopAll([member!])
  }
})
