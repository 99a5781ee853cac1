import { pino, type Logger } from 'pino'
import { TokenManager } from '../src/engine/token-manager.js'
import { TokenPool } from '../src/engine/token-pool.js'
import type { RefreshAttempt, TokenSource, TokenTransport } from '../src/engine/types.js'
import { REDACT_PATHS } from '../src/logger.js'
import { EntryCipher } from '../src/store/entry-cipher.js'
import { DEFAULT_REFRESH_BUDGET_PER_HOUR } from '../src/engine/schedule.js'
import { SharedTokenTransport, sharedFetchBoundMs } from '../src/store/shared-transport.js'
import type { StoreObserver, TokenStore } from '../src/store/types.js'
import type { Prng } from './random.js'
import { HostClock, type Scheduler } from './scheduler.js'
import { isoTime } from '../src/engine/clock.js'

/** What one sidecar process is configured with (the same on every host). */
export interface SidecarSettings {
  audiences: readonly string[]
  refreshBufferMs: number
  timeoutMs: number
  /** The client secret of a credential version (a rotation moves hosts from one to the next). */
  secret: (version: number) => string
}

/** Hooks through which the run sees and reshapes one process's parts (the mutants use them). */
export interface Wiring {
  upstream(host: number, instance: number, audience: string, alive: () => boolean): TokenTransport
  store(host: number, audience: string, alive: () => boolean): TokenStore
  /** Wraps the transport the manager gets (a mutant may replace what the shared transport answers). */
  transport?(ctx: WiringContext, shared: TokenTransport, upstream: TokenTransport): TokenTransport
  /** Wraps the token source clients are served from. */
  source?(ctx: WiringContext, manager: TokenManager): TokenSource
  attempt(ctx: WiringContext, attempt: RefreshAttempt): void
}

export interface WiringContext {
  host: Host
  instance: number
  audience: string
  manager: TokenManager
  /** The engine's logger for this audience. */
  logger: Logger
}

const silentStoreObserver: StoreObserver = { read () {}, lockWait () {} }

/** One running sidecar process: its managers, pool and shared transports. */
export class SidecarProcess {
  readonly instance: number
  readonly startedAt: number
  readonly pool: TokenPool
  readonly managers: TokenManager[] = []
  readonly shared: SharedTokenTransport[] = []
  readonly sources = new Map<string, TokenSource>()
  readonly audiences: readonly string[]
  /** Audiences for which this process has had a token (its start-up fetch is done). */
  readonly fetched = new Set<string>()
  alive = true

  constructor (host: Host, instance: number, settings: SidecarSettings, wiring: Wiring, logger: Logger) {
    this.instance = instance
    this.startedAt = host.sched.now
    this.audiences = settings.audiences
    const alive = (): boolean => this.alive
    const sources: Array<[string, TokenSource]> = []
    // The same wiring as src/sidecar.ts, with the clock, timers, randomness, token endpoint and store injected.
    for (const audience of settings.audiences) {
      const upstream = wiring.upstream(host.id, instance, audience, alive)
      const shared = new SharedTokenTransport({
        upstream,
        store: wiring.store(host.id, audience, alive),
        cipher: new EntryCipher(Buffer.from(settings.secret(host.secretVersion), 'utf8')),
        refreshBufferMs: settings.refreshBufferMs,
        upstreamTimeoutMs: settings.timeoutMs,
        observer: silentStoreObserver,
        onStoreError: () => {},
        clock: host.clock,
        timers: host.clock
      })
      this.shared.push(shared)
      let ctx: WiringContext | undefined
      const engineLogger = logger.child({ component: 'token-engine', audience })
      const transport: TokenTransport = wiring.transport === undefined
        ? shared
        : { fetchToken: (signal) => wiring.transport!(ctx!, shared, upstream).fetchToken(signal) }
      const manager = new TokenManager({
        transport,
        logger: engineLogger,
        refreshBufferMs: settings.refreshBufferMs,
        refreshBudgetPerHour: DEFAULT_REFRESH_BUDGET_PER_HOUR,
        // The documented bound of a wait for a fetch through the store, as src/sidecar.ts sets it.
        waitLimitMs: sharedFetchBoundMs(settings.timeoutMs),
        observer: { attempt: (attempt) => wiring.attempt(ctx!, attempt) },
        describe: { domain: 'sim-tenant', audience, client_id: 'sim-client', client_auth: 'client_secret_post', token_store: 'shared' },
        clock: host.clock,
        timers: host.clock,
        random: () => host.rng.next()
      })
      ctx = { host, instance, audience, manager, logger: engineLogger }
      this.managers.push(manager)
      const source = wiring.source === undefined ? manager : wiring.source(ctx, manager)
      this.sources.set(audience, source)
      sources.push([audience, source])
    }
    this.pool = new TokenPool(sources)
  }
}

/**
 * A machine: its clocks (which outlive any process), and the sidecar process
 * on it, restarted gracefully (a deploy) or crashed (killed mid-request).
 */
export class Host {
  readonly id: number
  readonly sched: Scheduler
  readonly clock: HostClock
  readonly rng: Prng
  readonly #settings: SidecarSettings
  readonly #wiring: Wiring
  readonly #lines: (host: number, instance: number, text: string) => void
  #instances = 0
  process: SidecarProcess | undefined
  /** Secret version this host's sidecar has loaded. */
  secretVersion = 1

  constructor (id: number, sched: Scheduler, clock: HostClock, rng: Prng, settings: SidecarSettings, wiring: Wiring, lines: (host: number, instance: number, text: string) => void) {
    this.id = id
    this.sched = sched
    this.clock = clock
    this.rng = rng
    this.#settings = settings
    this.#wiring = wiring
    this.#lines = lines
  }

  start (): void {
    const instance = ++this.#instances
    const logger = pino({
      name: 'token-sidecar',
      level: 'info',
      // The host's own wall clock, as the real logger's would be: never the machine running the simulation.
      timestamp: () => `,"time":${JSON.stringify(isoTime(this.clock.now()))}`,
      formatters: { level: (label) => ({ level: label }) },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { host: this.id, instance }
    }, { write: (text: string) => this.#lines(this.id, instance, text) })
    const proc = new SidecarProcess(this, instance, this.#settings, this.#wiring, logger)
    this.process = proc
    this.sched.dirty = true
    proc.pool.start()
  }

  /** A deploy's restart: the process stops (in-flight requests aborted, the lock released), then is gone. */
  stop (): void {
    const proc = this.process
    if (proc === undefined) return
    this.process = undefined
    this.sched.dirty = true
    proc.pool.stop()
    void proc.pool.close()
    // Anything the stopping process still runs finishes in the next microtasks; its timers die with it.
    this.sched.after(0, () => {
      proc.alive = false
      this.clock.clearAll()
    })
  }

  /** Killed: nothing runs any more, answers to its requests are lost, a lock it held stays until it expires. */
  crash (): void {
    const proc = this.process
    if (proc === undefined) return
    this.process = undefined
    proc.alive = false
    this.clock.clearAll()
  }

  /** SIGHUP with a rotated client secret, as src/sidecar.ts's reload does it: new cipher, then a fetch per audience to prove it. */
  reload (version: number): TokenManager[] {
    this.secretVersion = version
    const proc = this.process
    if (proc === undefined) return []
    const cipher = new EntryCipher(Buffer.from(this.#settings.secret(version), 'utf8'))
    for (const transport of proc.shared) transport.setCipher(cipher)
    this.sched.dirty = true
    for (const manager of proc.managers) void manager.refreshNow()
    return proc.managers
  }
}
