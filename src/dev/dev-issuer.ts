import { generateKeyPairSync, randomUUID } from 'node:crypto'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { signRs256 } from './jwt.js'

export interface DevIssuerOptions {
  clientId: string
  clientSecret: string
  /** The APIs the client may get tokens for. */
  audiences: readonly string[]
  lifetimeSeconds: number
}

export interface DevIssuer {
  readonly tokenUrl: string
  readonly issued: () => number
  close(): Promise<void>
}

const MAX_BODY_BYTES = 16 * 1024

function readBody (req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = ''
    req.setEncoding('utf8')
    req.on('data', (chunk: string) => {
      body += chunk
      if (body.length > MAX_BODY_BYTES) reject(new Error('body too large'))
    })
    req.on('end', () => resolve(body))
    req.on('error', reject)
  })
}

/** A token request's fields; as a standard token endpoint, only a form body (RFC 6749 §4.4.2). */
function parseGrant (contentType: string | undefined, body: string): Record<string, string> | undefined {
  const type = contentType?.split(';', 1)[0]?.trim().toLowerCase()
  return type === 'application/x-www-form-urlencoded' ? Object.fromEntries(new URLSearchParams(body)) : undefined
}

/** The client id and secret of client_secret_basic or client_secret_post; undefined for both or neither. */
function clientCredentials (authorization: string | undefined, grant: Record<string, string>): { id: string | undefined, secret: string | undefined } | undefined {
  if (authorization === undefined) return grant.client_secret === undefined ? undefined : { id: grant.client_id, secret: grant.client_secret }
  if (grant.client_secret !== undefined || !/^basic /i.test(authorization)) return undefined
  const decoded = Buffer.from(authorization.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  if (colon < 0) return undefined
  const part = (text: string): string | undefined => {
    try {
      return decodeURIComponent(text.replaceAll('+', ' '))
    } catch {
      return undefined
    }
  }
  return { id: part(decoded.slice(0, colon)), secret: part(decoded.slice(colon + 1)) }
}

function send (res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body))
}

/**
 * Dev mode's stand-in for Auth0: a loopback-only client-credentials endpoint
 * that issues short-lived RS256 JWTs shaped like Auth0's, and publishes its
 * key at /.well-known/jwks.json. Never for production.
 */
export async function startDevIssuer (opts: DevIssuerOptions): Promise<DevIssuer> {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 })
  const kid = randomUUID()
  let issued = 0
  let issuerUrl = ''

  const server = createServer((req, res) => {
    const path = req.url?.split('?', 1)[0]
    if (req.method === 'GET' && path === '/.well-known/jwks.json') {
      send(res, 200, { keys: [{ ...publicKey.export({ format: 'jwk' }), kid, use: 'sig', alg: 'RS256' }] })
      return
    }
    if (req.method !== 'POST' || path !== '/oauth/token') {
      send(res, 404, { error: 'not_found', error_description: 'Not found' })
      return
    }
    readBody(req).then(async (body) => {
      const grant = parseGrant(req.headers['content-type'], body)
      if (grant === undefined) {
        send(res, 400, { error: 'invalid_request', error_description: 'only application/x-www-form-urlencoded content-type bodies are supported' })
        return
      }
      if (grant.grant_type !== 'client_credentials') {
        send(res, 400, { error: 'invalid_request', error_description: 'Missing required parameter: grant_type' })
        return
      }
      const client = clientCredentials(req.headers.authorization, grant)
      if (client?.id !== opts.clientId || client.secret !== opts.clientSecret) {
        send(res, 401, { error: 'access_denied', error_description: 'Unauthorized' })
        return
      }
      // Auth0's parameter wins over RFC 8707's when both are sent, as at Auth0.
      const audience = grant.audience ?? grant.resource
      if (audience === undefined || !opts.audiences.includes(audience)) {
        send(res, 403, { error: 'access_denied', error_description: `Client is not authorized to access "${String(audience)}".` })
        return
      }
      const iat = Math.floor(Date.now() / 1000)
      const accessToken = await signRs256({
        iss: issuerUrl,
        sub: `${opts.clientId}@clients`,
        aud: audience,
        iat,
        exp: iat + opts.lifetimeSeconds,
        azp: opts.clientId,
        gty: 'client-credentials',
        scope: ''
      }, privateKey, kid)
      issued++
      send(res, 200, { access_token: accessToken, expires_in: opts.lifetimeSeconds, token_type: 'Bearer' })
    }, () => {
      send(res, 413, { error: 'invalid_request', error_description: 'Request body too large' })
    })
  })

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(0, '127.0.0.1', resolve)
  })
  const { port } = server.address() as AddressInfo
  issuerUrl = `http://127.0.0.1:${port}/`

  return {
    tokenUrl: `${issuerUrl}oauth/token`,
    issued: () => issued,
    close: () => new Promise((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  }
}
