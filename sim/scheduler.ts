import type { Clock, Timers } from '../src/engine/types.js'

interface Scheduled {
  at: number
  seq: number
  fn: () => void
  cancelled: boolean
}

/**
 * One event queue on true time (ms from the start of the run). Events at the
 * same instant run in the order they were scheduled. Nothing here reads a
 * real clock: time moves only from one event to the next.
 */
export class Scheduler {
  #now = 0
  #seq = 0
  readonly #heap: Scheduled[] = []
  /** Set by anything that may leave promise jobs behind; the run drains them after the event. */
  dirty = false

  get now (): number {
    return this.#now
  }

  get pending (): number {
    return this.#heap.length
  }

  at (time: number, fn: () => void): Scheduled {
    const item: Scheduled = { at: Math.max(time, this.#now), seq: ++this.#seq, fn, cancelled: false }
    this.#push(item)
    return item
  }

  after (ms: number, fn: () => void): Scheduled {
    return this.at(this.#now + Math.max(0, ms), fn)
  }

  cancel (item: Scheduled | undefined): void {
    if (item !== undefined) item.cancelled = true
  }

  /** Runs the next event at or before `until`; false when there is none. */
  step (until: number): boolean {
    for (;;) {
      const top = this.#heap[0]
      if (top === undefined || top.at > until) return false
      this.#pop()
      if (top.cancelled) continue
      this.#now = top.at
      top.fn()
      return true
    }
  }

  /** Moves time to `until` once no event is left before it. */
  advanceTo (until: number): void {
    if (until > this.#now) this.#now = until
  }

  #less (a: Scheduled, b: Scheduled): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq)
  }

  #push (item: Scheduled): void {
    const heap = this.#heap
    heap.push(item)
    let i = heap.length - 1
    while (i > 0) {
      const parent = (i - 1) >> 1
      if (!this.#less(heap[i]!, heap[parent]!)) break
      ;[heap[i], heap[parent]] = [heap[parent]!, heap[i]!]
      i = parent
    }
  }

  #pop (): void {
    const heap = this.#heap
    const last = heap.pop()!
    if (heap.length === 0) return
    heap[0] = last
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      const r = l + 1
      let m = i
      if (l < heap.length && this.#less(heap[l]!, heap[m]!)) m = l
      if (r < heap.length && this.#less(heap[r]!, heap[m]!)) m = r
      if (m === i) break
      ;[heap[i], heap[m]] = [heap[m]!, heap[i]!]
      i = m
    }
  }
}

interface HostTimer {
  /** Monotonic ms at which it fires next. */
  due: number
  fn: () => void
  /** Interval period, undefined for a one-shot. */
  period: number | undefined
  event: ReturnType<Scheduler['at']> | undefined
}

/**
 * How many periods a repeating timer may skip while its host's clocks are
 * left alone. The engine's only interval compares the two clocks every
 * second; with nothing stepping them a tick can only see drift (at most
 * 50 ppm here: 15 ms in five minutes), so ticks are delivered every five minutes, and at
 * the next period after any step, suspend or resume. A busy event loop in a
 * real process delays interval ticks the same way.
 */
export const INTERVAL_COALESCE = 300

/**
 * One host's wall and monotonic clocks and its timers, driven by the
 * scheduler. Monotonic time runs at `rate` (1 + drift) and stops while the
 * host is suspended. Wall time is true time plus an offset (NTP keeps its
 * rate right) that steps forward or back. Timers run on monotonic time, as
 * Node's do.
 */
export class HostClock implements Clock, Timers {
  readonly #sched: Scheduler
  readonly rate: number
  readonly #epochMs: number
  #monoAnchor: number
  #trueAnchor: number
  #wallOffset: number
  #suspendedAt: number | undefined
  #seq = 0
  readonly #timers = new Map<number, HostTimer>()

  constructor (sched: Scheduler, opts: { epochMs: number, offsetMs: number, driftPpm: number, monoStart: number }) {
    this.#sched = sched
    this.rate = 1 + opts.driftPpm / 1e6
    this.#monoAnchor = opts.monoStart
    this.#trueAnchor = sched.now
    this.#epochMs = opts.epochMs
    this.#wallOffset = opts.offsetMs
  }

  monotonic (): number {
    if (this.#suspendedAt !== undefined) return this.#monoAnchor
    return this.#monoAnchor + (this.#sched.now - this.#trueAnchor) * this.rate
  }

  now (): number {
    return this.#epochMs + this.#sched.now + this.#wallOffset
  }

  get suspended (): boolean {
    return this.#suspendedAt !== undefined
  }

  /** The wall clock alone steps: positive forward. */
  step (ms: number): void {
    this.#wallOffset += ms
    this.#disturbed()
  }

  /** Everything stops: no timer fires, neither clock moves. */
  suspend (): void {
    if (this.#suspendedAt !== undefined) return
    this.#monoAnchor = this.monotonic()
    this.#suspendedAt = this.#sched.now
    for (const timer of this.#timers.values()) {
      this.#sched.cancel(timer.event)
      timer.event = undefined
    }
  }

  /** Monotonic time goes on where it stopped; the wall clock has gone on all along. */
  resume (): void {
    if (this.#suspendedAt === undefined) return
    this.#suspendedAt = undefined
    this.#trueAnchor = this.#sched.now
    for (const timer of this.#timers.values()) this.#arm(timer)
    this.#disturbed()
  }

  setTimeout (fn: () => void, ms: number): unknown {
    return this.#add(fn, Math.max(1, ms), undefined)
  }

  clearTimeout (handle: unknown): void {
    this.#remove(handle as number)
  }

  setInterval (fn: () => void, ms: number): unknown {
    return this.#add(fn, Math.max(1, ms), Math.max(1, ms))
  }

  clearInterval (handle: unknown): void {
    this.#remove(handle as number)
  }

  /** Drops every timer: the process is gone. */
  clearAll (): void {
    for (const id of [...this.#timers.keys()]) this.#remove(id)
  }

  get timerCount (): number {
    return this.#timers.size
  }

  #add (fn: () => void, ms: number, period: number | undefined): number {
    const id = ++this.#seq
    const timer: HostTimer = { due: this.monotonic() + (period === undefined ? ms : ms * INTERVAL_COALESCE), fn, period, event: undefined }
    this.#timers.set(id, timer)
    this.#arm(timer, id)
    return id
  }

  #remove (id: number): void {
    const timer = this.#timers.get(id)
    if (timer === undefined) return
    this.#sched.cancel(timer.event)
    this.#timers.delete(id)
  }

  #arm (timer: HostTimer, id?: number): void {
    if (this.#suspendedAt !== undefined) return
    this.#sched.cancel(timer.event)
    const when = this.#trueAnchor + (timer.due - this.#monoAnchor) / this.rate
    const key = id ?? [...this.#timers].find(([, t]) => t === timer)![0]
    timer.event = this.#sched.at(when, () => this.#fire(key))
  }

  #fire (id: number): void {
    const timer = this.#timers.get(id)
    if (timer === undefined) return
    timer.event = undefined
    if (timer.period === undefined) {
      // A one-shot's callback may settle promises: the run drains them before the next event. (The
      // engine's only interval, the clock check, runs synchronously; a refresh it starts marks the run itself.)
      this.#sched.dirty = true
      this.#timers.delete(id)
    } else {
      timer.due += timer.period * INTERVAL_COALESCE
      this.#arm(timer, id)
    }
    timer.fn()
  }

  /** A step or resume: repeating timers fire at their next period, so the step is seen as soon as a real tick would see it. */
  #disturbed (): void {
    const mono = this.monotonic()
    for (const [id, timer] of this.#timers) {
      if (timer.period === undefined) continue
      const next = mono + timer.period
      if (next < timer.due) {
        timer.due = next
        this.#arm(timer, id)
      }
    }
  }
}
