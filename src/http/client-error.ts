import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

type ConnectionError = Error & { code?: string }

const ANSWERS: Readonly<Record<string, [status: number, message: string, label: string]>> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Client Timeout', 'timeout'],
  HPE_HEADER_OVERFLOW: [431, 'Exceeded maximum allowed HTTP header size', 'header_overflow']
}

const kResponse = Symbol('latest response')
type Tracked = Socket & { [kResponse]?: ServerResponse }

/**
 * Remembers the connection's latest response; the server's request handler
 * calls it for every request, so that the client-error handler knows whether
 * the request in progress was already answered (Node's own check does not
 * cover a request whose body never completes).
 */
export function noteResponse (req: IncomingMessage, res: ServerResponse): void {
  (req.socket as Tracked)[kResponse] = res
}

/**
 * Whether an error answer may go on this connection: no request on it has
 * been dispatched, the latest was fully answered (the error concerns the
 * next), or the latest is still arriving and nothing of its answer was sent.
 */
function mayAnswer (socket: Tracked): boolean {
  const res = socket[kResponse]
  if (res === undefined) return true
  return res.req.complete ? res.writableFinished : !res.headersSent
}

/**
 * Replaces Fastify's default client-error handler, which logs the whole error
 * at trace level, `rawPacket` included: the raw request bytes, an
 * `Authorization: Bearer <sidecar secret>` among them. This one logs only the
 * error code, answers as the default does, and never writes a second answer
 * on a connection whose request was answered (see noteResponse).
 */
export function clientErrorHandler (logger: { debug(obj: object, msg: string): void }): (err: ConnectionError, socket: Socket) => void {
  return function onClientError (err, socket) {
    if (err.code === 'ECONNRESET' || socket.destroyed) return
    const [status, message, label] = ANSWERS[err.code ?? ''] ?? [400, 'Client Error', 'error']
    logger.debug({ event: 'client_error', code: err.code ?? null }, `client ${label}`)
    if (socket.writable && mayAnswer(socket)) {
      const error = STATUS_CODES[status]!
      const body = `{"error":"${error}","message":"${message}","statusCode":${status}}`
      socket.write(`HTTP/1.1 ${status} ${error}\r\nContent-Length: ${body.length}\r\nContent-Type: application/json\r\n\r\n${body}`)
    }
    socket.destroy()
  }
}
