import t from 'tap'
import { SIM_SECRET_PREFIX } from '../../sim/fleet.js'
import { registerSecret } from '../fixtures/suite-log.js'
import { runSim } from '../../sim/fleet.js'
import { Prng } from '../../sim/random.js'
import { HostClock, INTERVAL_COALESCE, Scheduler } from '../../sim/scheduler.js'

// The simulated hosts log to memory, scanned by the simulator itself; the suite's scan looks for their secrets too.
registerSecret(SIM_SECRET_PREFIX)

t.test('the same seed gives the same run; another seed another', async (t) => {
  const a = await runSim({ seed: 7, days: 3, hosts: 3 })
  const b = await runSim({ seed: 7, days: 3, hosts: 3 })
  const c = await runSim({ seed: 8, days: 3, hosts: 3 })
  t.equal(a.violation, undefined)
  t.equal(a.hash, b.hash, 'event-log hash')
  t.same(a.stats, b.stats)
  t.ok(a.stats.upstreamRequests > 0 && a.stats.served > 1000, 'the run did something')
  t.not(a.hash, c.hash)
})

t.test('the PRNG is a function of its seed, and forks are independent streams', async (t) => {
  const draws = (seed: number): number[] => { const r = new Prng(seed); return Array.from({ length: 5 }, () => r.next()) }
  t.same(draws(1), draws(1))
  t.not(draws(1)[0], draws(2)[0])
  for (const x of draws(3)) t.ok(x >= 0 && x < 1)
  const root = new Prng(9)
  t.not(root.fork('a').next(), root.fork('a').next(), 'each fork starts from the stream\'s state')
})

t.test('a host clock: drift, steps, suspend and resume; timers on monotonic time', async (t) => {
  const sched = new Scheduler()
  const clock = new HostClock(sched, { epochMs: 1e12, offsetMs: 500, driftPpm: 100, monoStart: 1000 })
  const fired: number[] = []
  clock.setTimeout(() => fired.push(sched.now), 10_000)
  clock.step(-60_000)
  t.equal(clock.now(), 1e12 + 500 - 60_000, 'a step moves the wall clock only')
  clock.suspend()
  sched.advanceTo(5000)
  t.equal(clock.monotonic(), 1000, 'monotonic time stops while suspended')
  t.equal(clock.now(), 1e12 + 5000 + 500 - 60_000, 'wall time goes on')
  clock.resume()
  while (sched.step(Infinity));
  t.equal(fired.length, 1)
  t.ok(Math.abs(fired[0]! - (5000 + 10_000 / 1.0001)) < 1e-6, 'fires after 10 s of monotonic time, which runs 100 ppm fast')
  const ticks: number[] = []
  const id = clock.setInterval(() => ticks.push(sched.now), 1000)
  for (let i = 0; i < 3 && sched.step(Infinity); i++);
  t.equal(ticks.length, 3)
  t.ok(ticks[1]! - ticks[0]! > 1000 * INTERVAL_COALESCE * 0.99, 'an undisturbed interval is coalesced')
  const before = ticks.length
  clock.step(10_000)
  sched.step(Infinity)
  t.equal(ticks.length, before + 1)
  t.ok(ticks.at(-1)! - ticks.at(-2)! <= 1000, 'a step brings the next tick back to one period')
  clock.clearInterval(id)
  t.equal(clock.timerCount, 0)
})
