// The ToolBridge API behind the proxy, for the benchmark: a bare node:http
// server that checks the bearer token against the one it was told
// (POST /_expect), reads the body and answers a small JSON document.
import { createServer } from 'node:http'

let expected
const answer = JSON.stringify({ items: Array.from({ length: 3 }, (_, i) => ({ id: i + 1, title: `note ${i + 1}`, done: false })), next: null })
const server = createServer((req, res) => {
  let body = ''
  req.setEncoding('utf8')
  req.on('data', (chunk) => { body += chunk })
  req.on('end', () => {
    if (req.url === '/_expect') {
      expected = `Bearer ${body}`
      res.writeHead(204).end()
      return
    }
    if (req.headers.authorization !== expected) {
      res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"invalid_token"}')
      return
    }
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(answer) }).end(answer)
  })
})
server.keepAliveTimeout = 65_000
server.listen(0, '127.0.0.1', () => process.stdout.write(`${JSON.stringify({ api: true, port: server.address().port })}\n`))
process.once('SIGTERM', () => {
  server.closeAllConnections()
  server.close()
})
