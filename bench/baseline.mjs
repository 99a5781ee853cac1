// The ceiling: a bare Fastify app answering a fixed JSON body of the given
// size (the size of a real /token answer) with the sidecar's response headers,
// its logger level (info) and no per-request log lines, as the sidecar at info.
// It also answers GET /healthz, so its start-up is timed the way the sidecar's is.
//   node bench/baseline.mjs <bytes> [port]
import Fastify, { LogController } from 'fastify'

const size = Number(process.argv[2])
const port = Number(process.argv[3] ?? 0)
const skeleton = { access_token: '', token_type: 'Bearer', expires_in: 86400, expires_at: new Date().toISOString() }
skeleton.access_token = 'x'.repeat(size - JSON.stringify(skeleton).length)
const body = JSON.stringify(skeleton)

const app = Fastify({ logger: { level: 'info' }, logController: new LogController({ disableRequestLogging: true }) })
app.get('/token', (_request, reply) => {
  reply.header('cache-control', 'no-store').header('content-type', 'application/json; charset=utf-8').send(body)
})
app.get('/healthz', (_request, reply) => {
  reply.header('cache-control', 'no-store').send({ status: 'ok' })
})
await app.listen({ host: '127.0.0.1', port })
process.stdout.write(`${JSON.stringify({ baseline: true, port: app.server.address().port, bytes: Buffer.byteLength(body) })}\n`)
process.once('SIGTERM', () => app.close())
