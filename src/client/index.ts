export { createTokenClient, DEFAULT_TIMEOUT_MS, type TokenClient, type TokenClientOptions } from './token-client.js'
export { sidecarAuth } from './interceptor.js'
export { SidecarAuthError, SidecarError, SidecarUnavailableError, SidecarUnreachableError } from './errors.js'
