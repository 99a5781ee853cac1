import t from 'tap'
import { spawn, spawnSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { join } from 'node:path'
import { FakeApi } from '../fixtures/fake-api.js'
import { FakeAuth0 } from '../fixtures/fake-auth0.js'
import { spawnSidecar, stopOnTeardown } from '../fixtures/spawn-sidecar.js'
import { registerSecret } from '../fixtures/suite-log.js'
import { FIXTURES } from '../fixtures/suite-paths.js'

const SECRET = 'unmodified-client-sidecar-secret-0123456789'
registerSecret(SECRET)
const PYTHON = '/usr/bin/python3'
const SCRIPT = join(FIXTURES, 'unmodified_client.py')
const hasHttpx = spawnSync(PYTHON, ['-c', 'import httpx'], { stdio: 'ignore' }).status === 0

interface Answer { status: number, authorization?: string | null, tenant?: string | null, body?: string | null, events?: string[] }

t.test('an unmodified httpx client, pointed at the proxy with the sidecar secret as its static token, keeps working across a refresh and a 401', { skip: hasHttpx ? false : `${PYTHON} has no httpx (apt-get install python3-httpx)` }, async (t) => {
  // The first token lives 6 s, so the timer refreshes it after about 3 s; the later ones live long.
  const auth0 = await FakeAuth0.start({ expiresIn: 6 })
  const api = await FakeApi.start()
  api.accepts = (token) => auth0.issued.includes(token)
  t.teardown(async () => {
    await api.close()
    await auth0.close()
  })
  const sidecar = spawnSidecar({
    ...auth0.sidecarEnv(SECRET),
    TOOLBRIDGE_SIDECAR_PORT: '0',
    TOOLBRIDGE_REFRESH_BUFFER_SECONDS: '3',
    TOOLBRIDGE_PROXY_TARGET: api.origin,
    TOOLBRIDGE_PROXY_PORT: '0'
  })
  stopOnTeardown(t, sidecar)
  const listening = await sidecar.waitFor((l) => l.component === 'proxy' && String(l.msg).startsWith('Server listening at'))
  const port = Number(/:(\d+)$/.exec(String(listening.msg))![1])
  await sidecar.waitFor((l) => l.event === 'token_refreshed')
  auth0.expiresIn = 3600

  // The MCP server's own configuration, changed in two variables.
  const client = spawn(PYTHON, [SCRIPT], {
    env: { PATH: process.env.PATH ?? '', TOOLBRIDGE_GO_API_BASE_URL: `http://127.0.0.1:${port}`, TOOLBRIDGE_JWT_TOKEN: SECRET, TOOLBRIDGE_TENANT_ID: 'tenant-42' },
    stdio: ['pipe', 'pipe', 'pipe']
  })
  let stderr = ''
  client.stderr.setEncoding('utf8').on('data', (chunk: string) => { stderr += chunk })
  const exited = new Promise((resolve) => client.once('exit', resolve))
  t.teardown(async () => {
    client.stdin.end()
    await exited
  })
  const answers = createInterface({ input: client.stdout })[Symbol.asyncIterator]()
  async function ask (command: string): Promise<Answer> {
    client.stdin.write(`${command}\n`)
    const next = await answers.next()
    if (next.done === true) throw new Error(`the client exited: ${stderr}`)
    return JSON.parse(next.value) as Answer
  }

  const first = await ask('get')
  t.match(first, { status: 200, tenant: 'tenant-42', authorization: `Bearer ${auth0.issued[0]}` })
  t.match(await ask('sse'), { status: 200, events: ['data: event 1', 'data: event 2', 'data: event 3'] })

  const refreshed = await sidecar.waitFor((l) => l.event === 'token_refreshed' && l.trigger === 'timer')
  t.match(await ask('get'), { status: 200, authorization: `Bearer ${auth0.issued[1]}` }, 'the new token after the timer refreshed it')

  // Forced refreshes keep 10 s from the last token (FORCED_REFRESH_POLICY).
  const since = Date.now() - new Date(String(refreshed.time)).getTime()
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, 10_500 - since)))
  api.rejectNext(1)
  const retried = await ask('post')
  t.match(retried, { status: 200, authorization: `Bearer ${auth0.issued[2]}`, body: /^\{"title": ?"hello"\}$/ }, 'the API\'s 401 was answered by a forced refresh and one retry')
  const rejected = api.requests.filter((r) => r.token === auth0.issued[1] && r.method === 'POST')
  t.equal(rejected.length, 1, 'the rejected attempt reached the API once')
  await sidecar.waitFor((l) => l.event === 'token_refreshed' && l.trigger === 'forced')
  t.notOk(api.requests.some((r) => JSON.stringify(r.headers).includes(SECRET)), 'the sidecar secret never reached the API')
  t.equal(stderr, '')
})
