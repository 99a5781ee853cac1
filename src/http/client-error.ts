import { STATUS_CODES } from 'node:http'
import type { Socket } from 'node:net'
import type { FastifyInstance } from 'fastify'

type ConnectionError = Error & { code?: string }

const ANSWERS: Readonly<Record<string, [status: number, message: string, label: string]>> = {
  ERR_HTTP_REQUEST_TIMEOUT: [408, 'Client Timeout', 'timeout'],
  HPE_HEADER_OVERFLOW: [431, 'Exceeded maximum allowed HTTP header size', 'header_overflow']
}

/**
 * Replaces Fastify's default client-error handler, which logs the whole error
 * at trace level, `rawPacket` included: the raw request bytes, an
 * `Authorization: Bearer <sidecar secret>` among them. This one logs only the
 * error code, and answers as the default does.
 */
export function clientErrorHandler (this: FastifyInstance, err: ConnectionError, socket: Socket): void {
  if (err.code === 'ECONNRESET' || socket.destroyed) return
  const [status, message, label] = ANSWERS[err.code ?? ''] ?? [400, 'Client Error', 'error']
  this.log.debug({ event: 'client_error', code: err.code ?? null }, `client ${label}`)
  const error = STATUS_CODES[status]!
  const body = `{"error":"${error}","message":"${message}","statusCode":${status}}`
  if (socket.writable) {
    socket.write(`HTTP/1.1 ${status} ${error}\r\nContent-Length: ${body.length}\r\nContent-Type: application/json\r\n\r\n${body}`)
  }
  socket.destroy()
}
