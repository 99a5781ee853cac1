import { SidecarFailure } from '../errors.js'

/** Base class: anything that kept the client from getting a token. Messages never carry a token or secret. */
export class SidecarError extends SidecarFailure {}

/** No connection, a timeout, or an answer that is not the sidecar's. */
export class SidecarUnreachableError extends SidecarError {
  constructor (message: string, options?: ErrorOptions) {
    super(message, 'SIDECAR_UNREACHABLE', options)
  }
}

/** 401 from the sidecar: the client's TOOLBRIDGE_SIDECAR_SECRET is not the sidecar's. */
export class SidecarAuthError extends SidecarError {
  constructor (message: string) {
    super(message, 'SIDECAR_UNAUTHORIZED')
  }
}

/** 503 from the sidecar: it holds no valid token right now. */
export class SidecarUnavailableError extends SidecarError {
  readonly retryAfterSeconds: number | undefined
  constructor (message: string, retryAfterSeconds: number | undefined) {
    super(message, 'SIDECAR_TOKEN_UNAVAILABLE')
    this.retryAfterSeconds = retryAfterSeconds
  }
}
