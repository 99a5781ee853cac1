import type { TokenManager } from '../src/engine/token-manager.js'
import { CLOCK_POLICY, UPSTREAM_BOUNDS } from '../src/engine/schedule.js'
import { type FetchedToken, type ServedToken, type Serving, type TokenSource, type TokenTransport } from '../src/engine/types.js'
import type { TokenStore } from '../src/store/types.js'
import type { Host, Wiring, WiringContext } from './host.js'
import type { Scheduler } from './scheduler.js'
import type { SimStore } from './store.js'
import type { TokenEndpoint } from './upstream.js'
import { remainingMs } from '../src/engine/clock.js'

/**
 * Faults the last review found, put back on purpose so the simulator is seen
 * to catch them. Each is a wrapper in sim/ around a real part; nothing in
 * src/ knows about them.
 */
export const MUTANTS = {
  'peer-wall-clock': 'an adopted token lives until the writer\'s wall-clock expiry, read against the reader\'s wall clock',
  'fetch-alone-after-wait': 'a sidecar that found the lock taken never tries it again, and fetches alone when its wait ends',
  'jump-no-spacing': 'every wall-clock step the engine notices is answered with an immediate refetch, backward ones too',
  'no-margin': 'a token is served until it expires, without the 1 s margin',
  'log-token': 'the engine logs the start of each token it gets, as a debugging line left in would',
  'wedged-after-failure': 'after one failed fetch a sidecar process never fetches successfully again (a wedged connection pool)'
} as const

export type MutantName = keyof typeof MUTANTS

export function isMutant (name: string): name is MutantName {
  return Object.hasOwn(MUTANTS, name)
}

/** Callbacks the run offers to the wiring (and the mutants). */
export interface MutantHooks {
  /** A sidecar took a lock. */
  lockTaken?: (host: number) => void
  trap?: (host: number) => void
  /** The run stepped a host's wall clock against its monotonic clock (a step, or a resume). */
  clockStepped?: (host: Host, stepMs: number) => void
}

export interface MutantWorld {
  sched: Scheduler
  endpoint: TokenEndpoint
  store: SimStore
  hosts: () => Host[]
  epochMs: number
  bufferMs: number
  hooks: MutantHooks
}

/** The run's wiring with one mutant applied (or none). */
export function mutantWiring (mutant: MutantName | undefined, base: Wiring, world: MutantWorld): Wiring {
  switch (mutant) {
    case undefined: return base
    case 'peer-wall-clock': return peerWallClock(base, world)
    case 'fetch-alone-after-wait': return fetchAloneAfterWait(base)
    case 'jump-no-spacing': return jumpNoSpacing(base, world)
    case 'no-margin': return noMargin(base)
    case 'log-token': return logToken(base)
    case 'wedged-after-failure': return wedgedAfterFailure(base)
  }
}

function peerWallClock (base: Wiring, world: MutantWorld): Wiring {
  // What the old entries held: the writer's wall clock when it asked, plus the issued lifetime.
  const wallExpiry = new Map<string, number>()
  return {
    ...base,
    upstream (host, instance, audience, alive) {
      const inner = base.upstream(host, instance, audience, alive)
      return {
        async fetchToken (signal) {
          const askedAt = world.hosts()[host]!.clock.now()
          const fetched = await inner.fetchToken(signal)
          wallExpiry.set(fetched.accessToken, askedAt + fetched.expiresInSeconds * 1000)
          return fetched
        }
      }
    },
    transport (ctx: WiringContext, shared: TokenTransport, upstream: TokenTransport): TokenTransport {
      return {
        async fetchToken (signal): Promise<FetchedToken> {
          const got = await shared.fetchToken(signal)
          const expiresAt = wallExpiry.get(got.accessToken)
          if (got.source !== 'store' || expiresAt === undefined) return got
          const leftMs = expiresAt - ctx.host.clock.now()
          if (leftMs <= world.bufferMs + UPSTREAM_BOUNDS.minExpiresInSeconds * 1000) return upstream.fetchToken(signal)
          return { ...got, expiresInSeconds: Math.floor(leftMs / 1000) }
        }
      }
    }
  }
}

function fetchAloneAfterWait (base: Wiring): Wiring {
  const locks = new Map<string, number>()
  return {
    ...base,
    store (host, audience, alive) {
      const inner = base.store(host, audience, alive)
      const key = `${host}/${audience}`
      const store: TokenStore = {
        key: inner.key,
        read: () => inner.read(),
        set: (value, ttlMs) => inner.set(value, ttlMs),
        unlock: (owner) => inner.unlock(owner),
        async lock (owner, ttlMs) {
          const tries = locks.get(key) ?? 0
          locks.set(key, tries + 1)
          if (tries === 0) return inner.lock(owner, ttlMs)
          // The round trip, without the lock.
          await inner.read()
          return false
        }
      }
      return store
    },
    transport (ctx, shared) {
      return {
        fetchToken (signal) {
          locks.set(`${ctx.host.id}/${ctx.audience}`, 0)
          return shared.fetchToken(signal)
        }
      }
    }
  }
}

function jumpNoSpacing (base: Wiring, world: MutantWorld): Wiring {
  // The engine notices a step within its check interval; the old code then fetched at once, for every step.
  world.hooks.clockStepped = (host, stepMs) => {
    if (Math.abs(stepMs) <= CLOCK_POLICY.jumpThresholdMs) return
    const proc = host.process
    world.sched.after(CLOCK_POLICY.checkIntervalMs, () => {
      if (host.process !== proc || proc === undefined || host.clock.suspended) return
      world.sched.dirty = true
      for (const manager of proc.managers) void manager.refreshNow()
    })
  }
  return base
}

function logToken (base: Wiring): Wiring {
  return {
    ...base,
    transport: (ctx, shared) => ({
      async fetchToken (signal) {
        const got = await shared.fetchToken(signal)
        ctx.logger.info({ event: 'token_debug', token: got.accessToken.slice(0, 60) }, 'got a token')
        return got
      }
    })
  }
}

function wedgedAfterFailure (base: Wiring): Wiring {
  return {
    ...base,
    upstream (host, instance, audience, alive) {
      const inner = base.upstream(host, instance, audience, alive)
      let wedged: unknown
      return {
        async fetchToken (signal) {
          if (wedged !== undefined) throw wedged
          try {
            return await inner.fetchToken(signal)
          } catch (err) {
            wedged = err
            throw err
          }
        }
      }
    }
  }
}

function noMargin (base: Wiring): Wiring {
  return {
    ...base,
    source: (ctx: WiringContext, manager: TokenManager) => new NoMargin(manager, ctx.host)
  }
}

/** Serves the last token it handed out until it is gone by the host's clocks, without the margin. */
class NoMargin implements TokenSource {
  readonly mode = 'auto-refresh' as const
  readonly #inner: TokenManager
  readonly #host: Host
  #last: ServedToken | undefined

  constructor (inner: TokenManager, host: Host) {
    this.#inner = inner
    this.#host = host
  }

  serving (): Serving | undefined {
    const serving = this.#inner.serving()
    if (serving !== undefined) {
      this.#last = serving.token
      return serving
    }
    const last = this.#last
    if (last !== undefined && (remainingMs(last, this.#host.clock) ?? 0) > 0) return { token: last, expiresIn: 0 }
    return undefined
  }

  current (): ServedToken | undefined {
    return this.serving()?.token
  }

  async token (): Promise<ServedToken> {
    return this.current() ?? await this.#inner.token()
  }

  forceRefresh (rejectedSha256?: string): Promise<ServedToken> {
    return this.#inner.forceRefresh(rejectedSha256)
  }

  start (): void { this.#inner.start() }
  health (): ReturnType<TokenSource['health']> { return this.#inner.health() }
  stop (): void { this.#inner.stop() }
  close (): Promise<void> { return this.#inner.close() }
}
