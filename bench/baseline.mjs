// The ceiling: a bare Fastify route with no auth and no logger, answering a
// fixed JSON body of the given size (the size of a real /token answer).
import Fastify from 'fastify'

const size = Number(process.argv[2])
const skeleton = { access_token: '', token_type: 'Bearer', expires_in: 86400, expires_at: new Date().toISOString() }
skeleton.access_token = 'x'.repeat(size - JSON.stringify(skeleton).length)
const body = JSON.stringify(skeleton)

const app = Fastify({ logger: false })
app.get('/token', (_request, reply) => {
  reply.header('content-type', 'application/json; charset=utf-8').send(body)
})
await app.listen({ host: '127.0.0.1', port: 0 })
process.stdout.write(`${JSON.stringify({ port: app.server.address().port, bytes: Buffer.byteLength(body) })}\n`)
process.once('SIGTERM', () => app.close())
