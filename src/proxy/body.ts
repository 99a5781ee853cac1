import type { IncomingMessage } from 'node:http'
import { pipeline, Transform, type TransformCallback } from 'node:stream'
import { SidecarFailure } from '../errors.js'

/** A request body over TOOLBRIDGE_PROXY_MAX_BODY_BYTES: 413, and the connection closes. */
export class BodyTooLargeError extends SidecarFailure {
  readonly statusCode = 413

  constructor (limit: number) {
    super(`the request body is larger than this proxy accepts (${limit} bytes)`, 'PROXY_BODY_TOO_LARGE')
  }
}

/** What the proxy holds of a request body: all of it (a Buffer, so it can be sent again) or a stream. */
export type ProxyBody = Buffer | NodeJS.ReadableStream

export interface BodyLimits {
  maxBodyBytes: number
  retryBufferBytes: number
}

/**
 * A Fastify content-type parser for every type: the body is never parsed.
 * A small body with a Content-Length is read into memory; a larger one is
 * passed on as the request stream (Node holds it to its Content-Length); a
 * chunked one through a counter that fails once it passes the cap.
 */
export function readBody (limits: BodyLimits, payload: IncomingMessage, done: (err: Error | null, body?: ProxyBody) => void): void {
  const header = payload.headers['content-length']
  const length = header === undefined ? undefined : Number(header)
  if (length !== undefined && length > limits.maxBodyBytes) {
    done(new BodyTooLargeError(limits.maxBodyBytes))
    return
  }
  if (length === undefined) {
    const capped = new CappedStream(limits.maxBodyBytes)
    // pipeline: a caller that goes away mid-body fails the stream, and with it the upstream request.
    pipeline(payload, capped, () => {})
    done(null, capped)
    return
  }
  if (length > limits.retryBufferBytes) {
    done(null, payload)
    return
  }
  const chunks: Buffer[] = []
  payload.on('data', (chunk: Buffer) => chunks.push(chunk))
  payload.once('end', () => done(null, Buffer.concat(chunks)))
  payload.once('error', (err) => done(err))
}

/** Passes a chunked body through, failing once it passes the cap. */
class CappedStream extends Transform {
  readonly #limit: number
  /** Bytes passed so far. */
  count = 0
  /** Set once the cap was passed: the proxy answers 413 instead of 502. */
  exceeded = false

  constructor (limit: number) {
    super()
    this.#limit = limit
  }

  override _transform (chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.count += chunk.length
    if (this.count > this.#limit) {
      this.exceeded = true
      callback(new BodyTooLargeError(this.#limit))
      return
    }
    callback(null, chunk)
  }
}

/** True when a chunked body failed because it passed the cap. */
export function exceededCap (body: ProxyBody | undefined): boolean {
  return body instanceof CappedStream && body.exceeded
}

/** The body bytes a request carried (so far, for a stream that failed). */
export function bodyBytes (body: ProxyBody | undefined, contentLength: string | undefined): number {
  if (body === undefined) return 0
  if (body instanceof Buffer) return body.length
  return body instanceof CappedStream ? body.count : Number(contentLength)
}
