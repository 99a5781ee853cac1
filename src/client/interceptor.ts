import type { Dispatcher } from 'undici'
import type { TokenClient } from './token-client.js'

type Handler = Dispatcher.DispatchHandler

function withAuthorization (headers: Dispatcher.DispatchOptions['headers'], value: string): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {}
  if (Array.isArray(headers)) {
    for (let i = 0; i < headers.length; i += 2) out[String(headers[i])] = headers[i + 1] as string
  } else if (headers != null && typeof (headers as Iterable<unknown>)[Symbol.iterator] === 'function') {
    for (const [k, v] of headers as Iterable<[string, string]>) out[k] = v
  } else if (headers != null) {
    for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = v as string | string[]
  }
  for (const key of Object.keys(out)) if (key.toLowerCase() === 'authorization') delete out[key]
  out.authorization = value
  return out
}

/** A controller for failures before anything was dispatched. */
/* c8 ignore next -- nothing is in flight, so nobody calls abort, pause or resume on it */
const idle = { aborted: false, paused: false, reason: null, abort () {}, pause () {}, resume () {} } as unknown as Dispatcher.DispatchController

// undici 7 hands interceptors handlers of the controller API, legacy ones wrapped.
function fail (handler: Handler, err: Error): void {
  handler.onResponseError?.(idle, err)
}

/** Holds back a 401 so the request can be sent again with a newer token. */
class RetryOn401 implements Dispatcher.DispatchHandler {
  readonly #handler: Handler
  readonly #retry: () => void
  #rejected = false

  constructor (handler: Handler, retry: () => void) {
    this.#handler = handler
    this.#retry = retry
  }

  onRequestStart (controller: Dispatcher.DispatchController, context: unknown): void {
    this.#handler.onRequestStart?.(controller, context)
  }

  onResponseStart (controller: Dispatcher.DispatchController, statusCode: number, headers: Record<string, string | string[] | undefined>, statusMessage?: string): void {
    if (statusCode === 401) {
      this.#rejected = true
      return
    }
    this.#handler.onResponseStart?.(controller, statusCode, headers, statusMessage)
  }

  onResponseData (controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (!this.#rejected) this.#handler.onResponseData?.(controller, chunk)
  }

  onResponseEnd (controller: Dispatcher.DispatchController, trailers: Record<string, string | string[] | undefined>): void {
    if (this.#rejected) this.#retry()
    else this.#handler.onResponseEnd?.(controller, trailers)
  }

  onResponseError (controller: Dispatcher.DispatchController, err: Error): void {
    this.#handler.onResponseError?.(controller, err)
  }
}

/**
 * An undici interceptor that sets `Authorization: Bearer <token>` from the
 * sidecar on every request and, when the API answers 401, asks the sidecar for
 * a newer token and sends the request once more. A second 401 reaches the
 * caller. Requests with a streamed body cannot be replayed and are not retried.
 *
 *   const api = new Agent().compose(sidecarAuth(client))
 */
export function sidecarAuth (client: TokenClient): Dispatcher.DispatcherComposeInterceptor {
  return (dispatch) => (opts, handler: Handler) => {
    const body = opts.body
    const replayable = body == null || typeof body === 'string' || body instanceof Uint8Array
    const send = (token: string, handlerForAttempt: Handler): void => {
      try {
        dispatch({ ...opts, headers: withAuthorization(opts.headers, `Bearer ${token}`) }, handlerForAttempt)
      /* c8 ignore next 3 -- undici reports failures through the handler; a dispatcher that throws instead must not become an unhandled rejection */
      } catch (err) {
        fail(handler, err as Error)
      }
    }
    client.token().then((token) => {
      if (!replayable) {
        send(token, handler)
        return
      }
      send(token, new RetryOn401(handler, () => {
        client.refresh(token).then((fresh) => send(fresh, handler), (err: Error) => fail(handler, err))
      }))
    }, (err: Error) => fail(handler, err))
    return true
  }
}
