import { createHash } from 'node:crypto'
import { BACKOFF_POLICY, FORCED_REFRESH_POLICY, MIN_REMAINING_MS, REFRESH_POLICY, UPSTREAM_BOUNDS } from '../src/engine/schedule.js'
import type { RefreshAttempt, ServedToken, TokenSource } from '../src/engine/types.js'
import { EntryCipher } from '../src/store/entry-cipher.js'
import { sharedFetchBoundMs } from '../src/store/shared-transport.js'
import { Host, type Wiring, type WiringContext } from './host.js'
import { mutantWiring, type MutantName, type MutantHooks } from './mutants.js'
import { Prng } from './random.js'
import { HostClock, Scheduler } from './scheduler.js'
import { SimStore } from './store.js'
import { TOKEN_MARK, TokenEndpoint, type UpstreamFault, type UpstreamRequest } from './upstream.js'

export interface SimOptions {
  seed: number
  days: number
  hosts: number
  mutant?: MutantName | undefined
  /** Events kept for the report of a violation. */
  keepEvents?: number
  /** Prints every event and every log line as it happens (debugging a seed). */
  trace?: boolean
  /** Event kinds left out of the schedule (a hunt that sets a known fault aside); the draws stay the same. */
  without?: readonly string[]
}

export interface Violation {
  promise: 1 | 2 | 3 | 4 | 5
  at: number
  message: string
}

export interface SimStats {
  events: number
  upstreamRequests: number
  tokensIssued: number
  served: number
  faults: Record<string, number>
  /** Most upstream requests one host made in one hour, per audience. */
  maxPerHostHour: number
  /** Fewest ms between two fleet fetches of one audience in a calm window, as a fraction of the bound. */
  calmGapRatio: number | null
}

export interface SimResult {
  seed: number
  days: number
  hosts: number
  mutant: MutantName | undefined
  without: readonly string[]
  violation: Violation | undefined
  /** SHA-256 of the event log: the same seed gives the same hash. */
  hash: string
  lastEvents: string[]
  stats: SimStats
  config: Record<string, unknown>
}

const DAY_MS = 86_400_000
const HOUR_MS = 3_600_000
/** The simulated epoch: true time 0 is this wall-clock instant. */
const EPOCH_MS = Date.UTC(2027, 0, 1)

/** Every client secret of a run starts with this (promise 5 looks for it). */
export const SIM_SECRET_PREFIX = 'sim-client-secret'

/** Promise 3's budget: upstream requests one sidecar makes for one audience in one hour. */
export const HOURLY_BUDGET_PER_AUDIENCE = 240
/** The longest a fault window of an upstream answering 5-s lifetimes lasts, so the budget above holds. */
const MAX_LIE_WINDOW_MS = 5 * 60_000

/** Promise 4: after the last fault clears (and any Retry-After a host holds ends), every host serves within this. */
export function recoveryBoundMs (timeoutMs: number): number {
  return timeoutMs + BACKOFF_POLICY.maxTimeoutMs + sharedFetchBoundMs(timeoutMs) + 5_000
}

/** The earliest the engine refreshes a token of lifetime L after obtaining it, given the buffer (with jitter at its largest). */
export function earliestRefreshMs (lifetimeMs: number, bufferMs: number): number {
  const target = Math.max(lifetimeMs - bufferMs, lifetimeMs * REFRESH_POLICY.minLifetimeFraction)
  return target - Math.min(target * REFRESH_POLICY.maxJitterFraction, REFRESH_POLICY.maxJitterMs)
}

/**
 * Promise 2's bound: in a calm window, two fleet fetches of one audience are
 * at least this far apart. A fetch needs a host that holds the newest token
 * to refresh (no earlier than earliestRefreshMs after the fetch, for the
 * writer and every adopter alike), or the entry to have too little left to
 * adopt (L - buffer - 5 s).
 */
export function calmGapMs (lifetimeMs: number, bufferMs: number): number {
  return Math.min(earliestRefreshMs(lifetimeMs, bufferMs), lifetimeMs - bufferMs - UPSTREAM_BOUNDS.minExpiresInSeconds * 1000)
}

interface ManagerState {
  /** Requests of the attempt in flight. */
  pending: UpstreamRequest[]
  holdUntil: number
  /** The same hold on the host's monotonic clock, which does not count a suspend. */
  holdUntilMono: number
  lastForcedAt: number
  rotating: boolean
}

const drain = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Runs one seed: a fleet over simulated days of events, every promise checked as it goes. */
export async function runSim (opts: SimOptions): Promise<SimResult> {
  const root = new Prng(opts.seed)
  const cfgRng = root.fork('config')
  const eventRng = root.fork('events')
  // Event times come from a stream of their own, so a shorter run of a seed is a prefix of a longer one.
  const scheduleRng = root.fork('schedule')
  const sched = new Scheduler()
  const keep = opts.keepEvents ?? 40
  const lastEvents: string[] = []
  const hash = createHash('sha256')
  let violation: Violation | undefined
  const stats: SimStats = { events: 0, upstreamRequests: 0, tokensIssued: 0, served: 0, faults: {}, maxPerHostHour: 0, calmGapRatio: null }

  const audiences = cfgRng.chance(0.7) ? ['https://api.sim'] : ['https://api.sim', 'https://billing.sim']
  const lifetimeS = cfgRng.pick([600, 3600, 7200, 86_400])
  const bufferMs = cfgRng.pick([60, 300]) * 1000
  const timeoutMs = cfgRng.pick([3, 10]) * 1000
  const clientMeanMs = cfgRng.range(5, 60) * 1000
  const secretTag = cfgRng.int(0, 0xffffff).toString(36)
  const secret = (version: number): string => `${SIM_SECRET_PREFIX}-v${version}-${secretTag}`
  const lifetimeMs = lifetimeS * 1000
  const recoveryMs = recoveryBoundMs(timeoutMs)
  const gapMs = calmGapMs(lifetimeMs, bufferMs)
  const config = { audiences, lifetimeS, bufferS: bufferMs / 1000, timeoutS: timeoutMs / 1000, clientMeanS: Math.round(clientMeanMs / 1000), mutant: opts.mutant ?? null }

  function note (kind: string, detail = ''): void {
    const line = `${(sched.now / 1000).toFixed(3)} ${kind}${detail === '' ? '' : ' ' + detail}`
    hash.update(line + '\n')
    if (opts.trace === true) console.log(line)
    lastEvents.push(line)
    if (lastEvents.length > keep) lastEvents.shift()
  }

  // Recorded, never thrown: a throw inside the engine's callbacks would change what the engine does. The run stops after the event.
  function violate (promise: Violation['promise'], message: string): void {
    if (violation !== undefined) return
    violation = { promise, at: sched.now, message }
    note('VIOLATION', `promise ${promise}: ${message}`)
  }

  const endpoint = new TokenEndpoint(sched, root.fork('upstream'), { epochMs: EPOCH_MS, lifetimeS, timeoutMs, quotaPerHour: 100_000 })
  const store = new SimStore(sched, root.fork('store'), EPOCH_MS)
  const storeKey = (audience: string): string => `tokensidecar:v1:sim:${audience}`
  const managers = new Map<string, ManagerState>()
  const managerKey = (host: number, instance: number, audience: string): string => `${host}/${instance}/${audience}`
  const stateOf = (host: number, instance: number, audience: string): ManagerState => {
    const key = managerKey(host, instance, audience)
    let state = managers.get(key)
    if (state === undefined) {
      state = { pending: [], holdUntil: -Infinity, holdUntilMono: -Infinity, lastForcedAt: -Infinity, rotating: false }
      managers.set(key, state)
    }
    return state
  }

  // Fault windows: promise 2 holds only in calm time, promise 4 is probed after each clears.
  let activeFaults = 0
  let calmFrom = 0
  let faultEpoch = 0
  function beginFault (kind: string, detail = ''): (settleMs?: number) => void {
    activeFaults++
    faultEpoch++
    stats.faults[kind] = (stats.faults[kind] ?? 0) + 1
    note('fault', `${kind}${detail === '' ? '' : ' ' + detail}`)
    let ended = false
    return (settleMs = 0) => {
      if (ended) return
      ended = true
      activeFaults--
      note('fault_cleared', kind)
      calmFrom = Math.max(calmFrom, sched.now + recoveryMs + settleMs)
      if (activeFaults === 0) probeRecovery()
    }
  }
  const calm = (): boolean => activeFaults === 0 && sched.now >= calmFrom

  // Promise 1: every token handed to a client, checked against the endpoint's true expiry.
  function served (host: Host, audience: string, token: ServedToken, how: string): void {
    stats.served++
    const issued = endpoint.tokens.get(token.accessToken)
    if (issued === undefined) return violate(1, `host ${host.id} served a token the endpoint never issued (${how})`)
    if (issued.audience !== audience) return violate(1, `host ${host.id} served token#${issued.id} of ${issued.audience} for ${audience}`)
    // Never expired: the API accepts a token while now < exp (whole seconds, so up to 1 s before issue + expires_in).
    if (sched.now >= issued.expiresAt) {
      return violate(1, `host ${host.id} served token#${issued.id} (${how}) ${Math.round(sched.now - issued.expiresAt)} ms after its exp`)
    }
    // The margin: at least 1 s of what the endpoint granted (issue + expires_in) left. The host measures
    // time on its own monotonic clock: it cannot do better than that clock's drift over the token's age.
    const leftMs = issued.issuedAt + issued.lifetimeS * 1000 - sched.now
    const slackMs = Math.abs(host.clock.rate - 1) * (sched.now - issued.issuedAt) + 2
    if (leftMs < MIN_REMAINING_MS - slackMs) {
      violate(1, `host ${host.id} served token#${issued.id} (${how}) with ${Math.round(leftMs)} ms of its granted lifetime left (at least ${MIN_REMAINING_MS} ms promised; host wall clock off by ${Math.round(host.clock.now() - EPOCH_MS - sched.now)} ms)`)
    }
  }

  // Promise 5: no secret in any line any host wrote.
  const jwtLike = /eyJ[\w-]{8,}\.eyJ/
  function logged (hostId: number, instance: number, text: string): void {
    for (const line of text.split('\n')) {
      if (line === '') continue
      if (opts.trace === true) console.log(`${(sched.now / 1000).toFixed(3)} log ${line}`)
      if (line.includes(TOKEN_MARK) || line.includes(SIM_SECRET_PREFIX) || jwtLike.test(line)) {
        violate(5, `host ${hostId} logged a secret: ${line.replace(/SIMSIG\w+/g, 'SIMSIG…').slice(0, 200)}`)
        return
      }
      if (line.includes('"event":"clock_jump"')) {
        const parsed = JSON.parse(line) as Record<string, unknown>
        note('clock_jump', `host ${hostId}/${instance} ${String(parsed.direction)} ${String(parsed.step_ms)} ms ${String(parsed.action)}`)
      }
    }
  }

  // Upstream requests: promises 2 and 3 are checked as each is made.
  const lastFleetFetch = new Map<string, UpstreamRequest>()
  const crashedRequests = new Set<UpstreamRequest>()
  const hourly = new Map<string, number>()
  endpoint.onRequest((request) => {
    stats.upstreamRequests++
    note('upstream', `host ${request.host}/${request.instance} ${audiences.indexOf(request.audience)} ${request.outcome}`)
    const state = stateOf(request.host, request.instance, request.audience)
    state.pending.push(request)
    // 3: never before a Retry-After ends (the host's clock may run a little fast).
    if (sched.now < state.holdUntil) {
      violate(3, `host ${request.host} asked the token endpoint ${Math.round(state.holdUntil - sched.now)} ms before its Retry-After ended`)
    }
    // 3: a budget per host, audience and hour.
    const hourKey = `${request.host}/${request.audience}/${Math.floor(sched.now / HOUR_MS)}`
    const count = (hourly.get(hourKey) ?? 0) + 1
    hourly.set(hourKey, count)
    stats.maxPerHostHour = Math.max(stats.maxPerHostHour, count)
    if (count > HOURLY_BUDGET_PER_AUDIENCE) violate(3, `host ${request.host} made ${count} upstream requests for one audience in one hour (budget ${HOURLY_BUDGET_PER_AUDIENCE})`)
    if (!calm()) {
      lastFleetFetch.set(request.audience, request)
      return
    }
    // 2: in calm time, fleet fetches of one audience are spaced by the bound, and a restart adopts a valid entry.
    const previous = lastFleetFetch.get(request.audience)
    lastFleetFetch.set(request.audience, request)
    const proc = hosts[request.host]!.process
    const firstOfProcess = proc !== undefined && proc.instance === request.instance && !proc.fetched.has(request.audience)
    if (firstOfProcess) {
      const entry = store.peek(storeKey(request.audience))
      const opened = entry === undefined ? undefined : cipherFor(hosts[request.host]!.secretVersion).open(entry.value, storeKey(request.audience))
      if (entry !== undefined && opened !== undefined) {
        const left = Math.min(entry.leftMs, opened.issuedAt + opened.lifetimeMs - (EPOCH_MS + sched.now))
        const age = opened.lifetimeMs - left
        if (left > bufferMs + UPSTREAM_BOUNDS.minExpiresInSeconds * 1000 + 2000 && age > 1000) {
          violate(2, `host ${request.host} (re)started and asked the token endpoint although the shared entry had ${Math.round(left / 1000)} s left`)
        }
      }
    }
    if (previous === undefined || previous.at < calmFrom || crashedRequests.has(previous)) return
    const gap = sched.now - previous.at
    // Slack: whole seconds of adopted lifetimes, round trips, and clock drift between hosts.
    const bound = gapMs - 2000 - 2e-4 * lifetimeMs
    const ratio = gap / gapMs
    stats.calmGapRatio = stats.calmGapRatio === null ? ratio : Math.min(stats.calmGapRatio, ratio)
    if (gap < bound) {
      // A hint for whoever reads the violation; it fails like any other.
      const afterLockHolderCrash = sched.now - lastLockHolderCrash <= 2 * recoveryMs
      violate(2, `fleet fetched ${request.audience} twice ${Math.round(gap / 1000)} s apart in a calm window (at least ${Math.round(bound / 1000)} s: lifetime ${lifetimeS} s, buffer ${bufferMs / 1000} s); previous by host ${previous.host}, this by host ${request.host}${afterLockHolderCrash ? ' (after a sidecar crashed holding the lock)' : ''}`)
    }
  })

  const ciphers = new Map<number, EntryCipher>()
  const cipherFor = (version: number): EntryCipher => {
    let cipher = ciphers.get(version)
    if (cipher === undefined) {
      cipher = new EntryCipher(Buffer.from(secret(version), 'utf8'))
      ciphers.set(version, cipher)
    }
    return cipher
  }

  // Attempts, as the engine reports them: the trigger of each upstream request is known here.
  function attempt (ctx: WiringContext, event: RefreshAttempt): void {
    const state = stateOf(ctx.host.id, ctx.instance, ctx.audience)
    const requests = state.pending
    state.pending = []
    const proc = ctx.host.process
    if (event.result === 'success' && proc?.instance === ctx.instance) proc.fetched.add(ctx.audience)
    for (const request of requests) {
      if (request.retryAfterMs !== undefined && request.answeredAt !== undefined) {
        state.holdUntil = Math.max(state.holdUntil, request.answeredAt + request.retryAfterMs / ctx.host.clock.rate - 1)
        state.holdUntilMono = Math.max(state.holdUntilMono, ctx.host.clock.monotonic() + request.retryAfterMs)
      }
    }
    const first = requests[0]
    if (first === undefined) return
    // Forced and clock-jump refetches share one spacing (FORCED_REFRESH_POLICY): at least its first step apart.
    if (event.trigger !== 'forced' && event.trigger !== 'clock_jump') return
    if (event.trigger === 'forced' && state.rotating) {
      // A rotation's proving fetch (refreshNow) is not spaced, by design.
      state.rotating = false
      return
    }
    const spacing = FORCED_REFRESH_POLICY.minSpacingMs / ctx.host.clock.rate - 1
    if (first.at - state.lastForcedAt < spacing) {
      violate(3, `host ${ctx.host.id} made ${event.trigger === 'forced' ? 'forced' : 'clock-jump'} refetches ${Math.round(first.at - state.lastForcedAt)} ms apart (at least ${FORCED_REFRESH_POLICY.minSpacingMs} ms)`)
    }
    state.lastForcedAt = first.at
  }

  const hooks: MutantHooks = {}
  const baseWiring: Wiring = {
    upstream: (host, instance, audience, alive) => endpoint.transport(host, instance, audience, () => hosts[host]!.secretVersion, alive),
    store: (host, audience, alive) => {
      const entry = store.entry(storeKey(audience), alive)
      return { ...entry, key: entry.key, lock: async (owner, ttlMs) => {
        const locked = await entry.lock(owner, ttlMs)
        if (locked) hooks.lockTaken?.(host)
        return locked
      } }
    },
    attempt
  }
  const wiring = mutantWiring(opts.mutant, baseWiring, { sched, endpoint, store, hosts: () => hosts, epochMs: EPOCH_MS, bufferMs, hooks })

  const hosts: Host[] = []
  for (let i = 0; i < opts.hosts; i++) {
    const rng = root.fork(`host-${i}`)
    const clock = new HostClock(sched, { epochMs: EPOCH_MS, offsetMs: rng.range(-2000, 2000), driftPpm: rng.range(-50, 50), monoStart: rng.range(1e6, 1e9) })
    hosts.push(new Host(i, sched, clock, rng, { audiences, refreshBufferMs: bufferMs, timeoutMs, secret }, wiring, logged))
  }

  // Promise 4: once every fault has cleared, each running host serves every audience within the bound.
  function probeRecovery (): void {
    const epoch = faultEpoch
    const clearedAt = sched.now
    for (const host of hosts) {
      const due = (): number => {
        let from = clearedAt
        const proc = host.process
        if (proc !== undefined) {
          from = Math.max(from, proc.startedAt)
          // A hold runs on the host's monotonic clock: a suspend in between makes it end later in true time.
          for (const audience of audiences) from = Math.max(from, sched.now + (stateOf(host.id, proc.instance, audience).holdUntilMono - host.clock.monotonic()) / host.clock.rate)
        }
        return from + recoveryMs
      }
      const probe = (): void => {
        if (faultEpoch !== epoch) return
        const proc = host.process
        if (proc === undefined || host.clock.suspended) return
        const at = due()
        if (at > sched.now + 1) {
          sched.at(at, probe)
          return
        }
        for (const audience of audiences) {
          const serving = proc.sources.get(audience)!.serving()
          if (serving === undefined) return violate(4, `host ${host.id} has no valid token for ${audience} ${Math.round((sched.now - clearedAt) / 1000)} s after the faults cleared (bound ${Math.round(recoveryMs / 1000)} s after the later of that, its start and its Retry-After)`)
          served(host, audience, serving.token, 'recovery probe')
        }
      }
      sched.at(due(), probe)
    }
  }

  // Clients: GET /token at a rate on every host, the API model rejecting expired or revoked tokens.
  let revokedBefore = -Infinity
  const accepts = (token: string): boolean => {
    const issued = endpoint.tokens.get(token)
    return issued !== undefined && issued.expiresAt > sched.now && issued.issuedAt >= revokedBefore
  }
  /** One GET /token, then the API; synchronous while a token is in hand and accepted (the common case). */
  function clientCall (host: Host, audience: string): void {
    const proc = host.process
    if (proc === undefined || host.clock.suspended) return
    const source = proc.sources.get(audience)!
    const token = source.serving()?.token
    if (token === undefined) {
      sched.dirty = true
      source.token().then((waited) => {
        if (proc.alive) present(host, proc.alive, source, audience, waited, 'GET /token (waited)')
      }, () => {})
      return
    }
    present(host, proc.alive, source, audience, token, 'GET /token')
  }
  function present (host: Host, alive: boolean, source: TokenSource, audience: string, token: ServedToken, how: string): void {
    served(host, audience, token, how)
    if (!alive || accepts(token.accessToken)) return
    note('api_rejected', `host ${host.id} token#${endpoint.tokens.get(token.accessToken)?.id ?? '?'}`)
    sched.dirty = true
    const sha = createHash('sha256').update(token.accessToken).digest('hex')
    const proc = host.process
    source.forceRefresh(sha).then((fresh) => {
      if (proc?.alive === true) served(host, audience, fresh, 'POST /token/refresh')
    }, () => {})
  }
  const clientRng = root.fork('clients')
  function clientLoop (host: Host, audience: string): void {
    sched.after(clientRng.exp(clientMeanMs), () => {
      clientCall(host, audience)
      clientLoop(host, audience)
    })
  }

  // The fault and restart schedule, drawn from the seed.
  const endMs = opts.days * DAY_MS
  function restart (host: Host, crash: boolean, downMs: number): void {
    note(crash ? 'crash' : 'restart', `host ${host.id} for ${Math.round(downMs)} ms`)
    const proc = host.process
    // A fetch the stop or crash cut short was never shared: the fleet may fetch once more for it (promise 2's exception).
    if (proc !== undefined) for (const audience of audiences) for (const request of stateOf(host.id, proc.instance, audience).pending) crashedRequests.add(request)
    if (crash) host.crash()
    else host.stop()
    sched.after(downMs, () => {
      if (host.process !== undefined) return
      note('start', `host ${host.id}`)
      host.start()
    })
  }
  let lastLockHolderCrash = -Infinity
  function armLockTrap (): void {
    note('trap', 'the next sidecar to take a lock crashes mid-fetch')
    hooks.trap = (hostId) => {
      hooks.trap = undefined
      const host = hosts[hostId]!
      sched.after(eventRng.range(5, 15), () => {
        lastLockHolderCrash = sched.now
        restart(host, true, eventRng.range(5000, 30_000))
      })
    }
  }
  const upstreamFaults: UpstreamFault[] = ['rate_limited', 'server_error', 'hang', 'refuse', 'lie', 'slow']
  const kinds: ReadonlyArray<readonly [string, number]> = [
    ['restart_one', 6], ['rolling_restart', 3], ['restart_all', 2], ['crash_one', 3], ['crash_lock_holder', 2],
    ['upstream', 8], ['store', 4], ['store_flush', 1], ['store_plant', 2], ['clock_step', 3], ['clock_flap', 1],
    ['suspend', 2], ['rotation', 1], ['revoke', 2]
  ]
  const totalWeight = kinds.reduce((sum, [, w]) => sum + w, 0)
  function drawKind (): string {
    let x = eventRng.next() * totalWeight
    for (const [kind, weight] of kinds) {
      x -= weight
      if (x < 0) return kind
    }
    return kinds[0]![0]
  }
  /** Steps a host's wall clock (the jump-no-spacing mutant hears of it). */
  function stepClock (host: Host, ms: number): void {
    host.clock.step(ms)
    sched.dirty = true
    hooks.clockStepped?.(host, ms)
  }
  const faultDuration = (): number => Math.min(eventRng.exp(20 * 60_000), 3 * HOUR_MS)

  function runEvent (kind: string): void {
    const host = hosts[eventRng.int(0, hosts.length - 1)]!
    switch (kind) {
      case 'restart_one': restart(host, false, eventRng.range(500, 5000)); break
      case 'crash_one': restart(host, true, eventRng.range(500, 10_000)); break
      case 'restart_all': for (const h of hosts) restart(h, false, eventRng.range(500, 5000)); break
      case 'rolling_restart':
        hosts.forEach((h, i) => sched.after(i * 20_000, () => restart(h, false, eventRng.range(500, 5000))))
        break
      case 'crash_lock_holder': armLockTrap(); break
      case 'upstream': {
        const fault = eventRng.pick(upstreamFaults)
        const ms = fault === 'lie' ? Math.min(faultDuration(), MAX_LIE_WINDOW_MS) : faultDuration()
        if (fault === 'rate_limited') endpoint.retryAfterS = eventRng.pick([1, 30, 600, 7200])
        const end = beginFault(`upstream_${fault}`, `${Math.round(ms / 1000)} s${fault === 'rate_limited' ? ` retry-after ${endpoint.retryAfterS} s` : ''}`)
        endpoint.fault = fault
        sched.after(ms, () => {
          if (endpoint.fault === fault) endpoint.fault = undefined
          end()
        })
        break
      }
      case 'store': {
        const fault = eventRng.pick(['down', 'pause', 'slow'] as const)
        const ms = fault === 'pause' ? eventRng.range(200, 10_000) : faultDuration()
        const end = beginFault(`store_${fault}`, `${Math.round(ms / 1000)} s`)
        if (fault === 'pause') store.pausedUntil = Math.max(store.pausedUntil, sched.now + ms)
        else store.fault = fault
        sched.after(ms, () => {
          if (store.fault === fault) store.fault = undefined
          end(lifetimeMs)
        })
        break
      }
      case 'store_flush': {
        const end = beginFault('store_flush')
        store.flushAll()
        sched.after(1, () => end(lifetimeMs))
        break
      }
      case 'store_plant': {
        const audience = eventRng.pick(audiences)
        const what = eventRng.pick(['garbage', 'oversized', 'replayed', 'no_expiry'] as const)
        const end = beginFault('store_plant', what)
        const key = storeKey(audience)
        if (what === 'garbage') store.plant(key, `v1.${'A'.repeat(eventRng.int(0, 200))}`, eventRng.chance(0.5) ? undefined : lifetimeMs)
        else if (what === 'oversized') store.plant(key, 'x'.repeat(1 << 20), lifetimeMs)
        else if (what === 'no_expiry') store.plant(key, store.peek(key)?.value ?? 'v1.x', undefined)
        else if (replayable.has(key)) store.plant(key, replayable.get(key)!, lifetimeMs)
        sched.after(1, () => end(lifetimeMs))
        break
      }
      case 'clock_step': {
        const ms = eventRng.pick([6_000, 60_000, HOUR_MS, 2 * DAY_MS]) * (eventRng.chance(0.5) ? 1 : -1)
        const lasts = faultDuration()
        const end = beginFault('clock_step', `host ${host.id} ${ms / 1000} s for ${Math.round(lasts / 1000)} s`)
        stepClock(host, ms)
        // NTP puts it right again.
        sched.after(lasts, () => {
          stepClock(host, -ms)
          note('clock_corrected', `host ${host.id}`)
          end()
        })
        break
      }
      case 'clock_flap': {
        const end = beginFault('clock_flap', `host ${host.id}`)
        for (let i = 0; i < 30; i++) {
          sched.after(i * 2000, () => stepClock(host, i % 2 === 0 ? 6000 : -6000))
        }
        sched.after(60_000, () => end())
        break
      }
      case 'suspend': {
        const ms = eventRng.pick([10_000, 5 * 60_000, 2 * HOUR_MS])
        const end = beginFault('suspend', `host ${host.id} for ${ms / 1000} s`)
        host.clock.suspend()
        sched.after(ms, () => {
          host.clock.resume()
          sched.dirty = true
          // To the engine a resume is a forward step of the wall clock against the monotonic one.
          hooks.clockStepped?.(host, ms)
          note('resume', `host ${host.id}`)
          end()
        })
        break
      }
      case 'rotation': {
        const version = endpoint.secretVersion + 1
        endpoint.secretVersion = version
        const end = beginFault('rotation', `to v${version}`)
        let left = hosts.length
        for (const h of hosts) {
          sched.after(eventRng.range(0, 120_000), () => {
            note('reload', `host ${h.id} v${version}`)
            const proc = h.process
            if (proc !== undefined) for (const audience of audiences) stateOf(h.id, proc.instance, audience).rotating = true
            h.reload(version)
            if (--left === 0) end()
          })
        }
        break
      }
      case 'revoke': {
        const ms = Math.min(faultDuration(), lifetimeMs)
        const end = beginFault('revoke', `${Math.round(ms / 1000)} s`)
        revokedBefore = sched.now
        // Every client at once meets a rejection: a burst of forced refreshes.
        for (const h of hosts) for (const audience of audiences) sched.after(eventRng.range(0, 2000), () => clientCall(h, audience))
        sched.after(ms, () => {
          revokedBefore = -Infinity
          end(lifetimeMs)
        })
        break
      }
    }
  }

  // Entries seen in the store, for replaying an older one.
  const replayable = new Map<string, string>()
  hooks.lockTaken = (hostId) => hooks.trap?.(hostId)
  function schedule (): void {
    let t = 0
    const meanGap = scheduleRng.range(1, 6) * HOUR_MS
    for (;;) {
      t += scheduleRng.exp(meanGap)
      if (t >= endMs - recoveryMs) break
      sched.at(t, () => {
        for (const audience of audiences) {
          const seen = store.peek(storeKey(audience))
          if (seen !== undefined && seen.value.length < 4096) replayable.set(storeKey(audience), seen.value)
        }
        const kind = drawKind()
        if (opts.without?.includes(kind) === true) return
        runEvent(kind)
      })
    }
  }

  note('config', JSON.stringify(config))
  if (eventRng.chance(0.3) && opts.without?.includes('crash_lock_holder') !== true) armLockTrap()
  // The fleet's first deploy: hosts come up a few seconds apart.
  for (const host of hosts) {
    sched.at(eventRng.range(0, 3000), () => {
      note('start', `host ${host.id}`)
      host.start()
    })
    for (const audience of audiences) clientLoop(host, audience)
  }
  schedule()
  await drain()
  while (violation === undefined && sched.step(endMs)) {
    stats.events++
    if (sched.dirty) {
      sched.dirty = false
      await drain()
    }
  }
  for (const host of hosts) host.crash()
  stats.tokensIssued = endpoint.tokens.size
  return { seed: opts.seed, days: opts.days, hosts: opts.hosts, mutant: opts.mutant, without: opts.without ?? [], violation, hash: hash.digest('hex'), lastEvents, stats, config }
}
