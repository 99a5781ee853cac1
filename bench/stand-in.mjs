// A loopback Auth0 stand-in for the benchmark: counts token requests and can
// hold chosen requests to play a slow upstream.
import { randomBytes } from 'node:crypto'
import { createServer } from 'node:http'

/**
 * @param {{ clientId: string, clientSecret: string, expiresIn: number, delays?: Record<number, number> }} opts
 *   delays: 1-based request number -> ms to hold that answer
 */
export async function startStandIn (opts) {
  let count = 0
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (chunk) => { body += chunk })
    req.on('end', () => {
      const n = ++count
      // A standard token endpoint: the grant is a form (RFC 6749 §4.4.2).
      const grant = req.headers['content-type'] === 'application/x-www-form-urlencoded'
        ? Object.fromEntries(new URLSearchParams(body))
        : undefined
      const answer = () => {
        if (grant?.client_id !== opts.clientId || grant?.client_secret !== opts.clientSecret) {
          res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"access_denied","error_description":"Unauthorized"}')
          return
        }
        const b64 = (v) => Buffer.from(JSON.stringify(v)).toString('base64url')
        const now = Math.floor(Date.now() / 1000)
        const accessToken = `${b64({ alg: 'RS256', typ: 'JWT' })}.${b64({ iss: 'https://tenant.us.auth0.com/', sub: `${opts.clientId}@clients`, aud: 'https://toolbridgeapi.erauner.dev', iat: now, exp: now + opts.expiresIn, azp: opts.clientId, gty: 'client-credentials', scope: 'read:notes write:notes read:tasks write:tasks' })}.${randomBytes(256).toString('base64url')}`
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify({ access_token: accessToken, expires_in: opts.expiresIn, token_type: 'Bearer' }))
      }
      const delay = opts.delays?.[n] ?? 0
      if (delay > 0) setTimeout(answer, delay)
      else answer()
    })
  })
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  return {
    tokenUrl: `http://127.0.0.1:${server.address().port}/oauth/token`,
    count: () => count,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve) })
  }
}
