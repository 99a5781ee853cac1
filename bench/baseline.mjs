// The ceiling: a bare Fastify app answering a fixed JSON body of the given
// size (the size of a real /token answer) with the sidecar's response headers.
// Bare means Fastify's defaults: no logger, as the sidecar's Fastify has none
// unless access logs are on. With --metrics it also runs prom-client's default
// metrics, as the sidecar does, so their share of the cost can be told apart.
// It also answers GET /healthz, so its start-up is timed the way the sidecar's is.
//   node bench/baseline.mjs <bytes> [port] [--metrics]
import Fastify from 'fastify'

const [size, port = 0] = process.argv.slice(2).filter((a) => !a.startsWith('--')).map(Number)
const withMetrics = process.argv.includes('--metrics')
const skeleton = { access_token: '', token_type: 'Bearer', expires_in: 86400, expires_at: new Date().toISOString() }
skeleton.access_token = 'x'.repeat(size - JSON.stringify(skeleton).length)
const body = JSON.stringify(skeleton)

// Loaded only when asked for, so the bare app's start-up and memory do not include prom-client.
if (withMetrics) {
  const { collectDefaultMetrics, Registry } = await import('prom-client')
  collectDefaultMetrics({ register: new Registry() })
}
const app = Fastify()
app.get('/token', (_request, reply) => {
  reply.header('cache-control', 'no-store').header('content-type', 'application/json; charset=utf-8').send(body)
})
app.get('/healthz', (_request, reply) => {
  reply.header('cache-control', 'no-store').send({ status: 'ok' })
})
await app.listen({ host: '127.0.0.1', port })
process.stdout.write(`${JSON.stringify({ baseline: true, port: app.server.address().port, bytes: Buffer.byteLength(body) })}\n`)
process.once('SIGTERM', () => app.close())
