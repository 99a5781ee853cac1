import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import type { Socket } from 'node:net'

export interface ConnectionGuardOptions {
  /** Connections held at once; past it the idlest unauthenticated one is closed, or the new one when there is none. */
  maxConnections: number
  /** How long a connection that has not presented the sidecar secret may stay idle after its last request. */
  unauthenticatedIdleMs: number
}

interface ConnectionState {
  authenticated: boolean
  /** performance.now() of its connection or latest request. */
  activeAt: number
  /** Its latest response, while unauthenticated: one still being written keeps it open. */
  response: ServerResponse | undefined
  dropped: boolean
}

const kState = Symbol('connection state')
type Tracked = Socket & { [kState]?: ConnectionState }

/**
 * Connection accounting for a server whose clients present a shared secret.
 * Node's `server.maxConnections` refuses new connections once the cap is
 * reached, so a peer that opens enough idle sockets locks every client out.
 * Here a connection counts as a stranger until a request on it presents the
 * right secret (`authenticated()`, called by the secret check): strangers
 * are closed once idle for `unauthenticatedIdleMs` (a short keep-alive), and
 * when the cap is reached the idlest stranger is closed to admit the new
 * connection. A new connection is refused only when every other one is
 * authenticated.
 */
export class ConnectionGuard {
  readonly #max: number
  readonly #idleMs: number
  /** Unauthenticated connections, least recently active first. */
  readonly #strangers = new Map<Socket, ConnectionState>()
  #count = 0
  readonly #sweeper: NodeJS.Timeout

  constructor (opts: ConnectionGuardOptions) {
    this.#max = opts.maxConnections
    this.#idleMs = opts.unauthenticatedIdleMs
    // Checked at a fraction of the limit, so an idle stranger goes within 1.5 times it.
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(10, Math.min(1000, this.#idleMs / 2))).unref()
  }

  /** Accounts for the server's connections and requests; one guard may watch several servers under one cap. */
  attach (server: Server): void {
    this.watchConnections(server)
    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.request(req, res))
  }

  /**
   * Accounts for the server's connections only: its request handler then calls
   * request() for each request (one call costs less than a second 'request' listener).
   */
  watchConnections (server: Server): void {
    server.on('connection', (socket: Socket) => this.#admit(socket))
  }

  /** A request on this connection presented the right secret: it may stay as long as keep-alive allows. */
  authenticated (socket: Socket): void {
    const state = (socket as Tracked)[kState]
    if (state === undefined || state.authenticated) return
    state.authenticated = true
    state.response = undefined
    this.#strangers.delete(socket)
  }

  /** Connections held now. */
  get size (): number {
    return this.#count
  }

  close (): void {
    clearInterval(this.#sweeper)
  }

  #admit (socket: Tracked): void {
    const state: ConnectionState = { authenticated: false, activeAt: performance.now(), response: undefined, dropped: false }
    socket[kState] = state
    this.#count++
    this.#strangers.set(socket, state)
    socket.once('close', () => this.#drop(socket, state))
    if (this.#count <= this.#max) return
    // The first stranger is the idlest; it is the new connection itself when all others are authenticated.
    const [idlest, idlestState] = this.#strangers.entries().next().value!
    this.#close(idlest, idlestState)
  }

  /** A request arrived: a stranger's connection counts as active again. */
  request (req: IncomingMessage, res: ServerResponse): void {
    const socket = req.socket as Tracked
    const state = socket[kState]
    if (state === undefined || state.authenticated || state.dropped) return
    state.activeAt = performance.now()
    state.response = res
    // Re-inserted: the map stays ordered by activity.
    this.#strangers.delete(socket)
    this.#strangers.set(socket, state)
  }

  #sweep (): void {
    const cutoff = performance.now() - this.#idleMs
    for (const [socket, state] of this.#strangers) {
      if (state.activeAt > cutoff) return
      if (state.response === undefined || state.response.writableFinished) this.#close(socket, state)
    }
  }

  #close (socket: Socket, state: ConnectionState): void {
    this.#drop(socket, state)
    socket.destroy()
  }

  #drop (socket: Socket, state: ConnectionState): void {
    if (state.dropped) return
    state.dropped = true
    this.#count--
    this.#strangers.delete(socket)
  }
}
