import t from 'tap'
import { SIM_SECRET_PREFIX } from '../../sim/fleet.js'
import { registerSecret } from '../fixtures/suite-log.js'
import { runSim } from '../../sim/fleet.js'
import { MUTANTS, type MutantName } from '../../sim/mutants.js'

/**
 * Each mutant puts back a fault the last review found (or, for promises 4
 * and 5, a plausible one), so every promise is seen to fail; the simulator must
 * catch it, and the same seed must pass without it, so what is caught is the
 * mutant. The pinned seeds are the shortest failing runs found
 * (docs/simulator.md); a change to the engine moves every run, so when a
 * pinned seed no longer catches its mutant the next seeds are tried, and the
 * test fails only when none of 40 does.
 */
const PINNED: Record<MutantName, { promise: number, seeds: number[], days: number }> = {
  'peer-wall-clock': { promise: 1, seeds: [30, 6], days: 1 },
  'fetch-alone-after-wait': { promise: 2, seeds: [16, 23], days: 1 },
  'jump-no-spacing': { promise: 3, seeds: [6, 11], days: 1 },
  'no-margin': { promise: 1, seeds: [7, 30], days: 11 },
  'log-token': { promise: 5, seeds: [11, 1], days: 1 },
  'wedged-after-failure': { promise: 4, seeds: [30, 24], days: 1 }
}
const FALLBACK_SEEDS = 40

for (const [mutant, { promise, seeds, days }] of Object.entries(PINNED) as Array<[MutantName, typeof PINNED[MutantName]]>) {
  t.test(`${mutant}: ${MUTANTS[mutant]}`, async (t) => {
    const candidates = [...new Set([...seeds, ...Array.from({ length: FALLBACK_SEEDS }, (_, i) => i + 1)])]
    const caught: number[] = []
    for (const seed of candidates) {
      const run = await runSim({ seed, days, hosts: 3, mutant })
      if (run.violation?.promise !== promise) continue
      const clean = await runSim({ seed, days, hosts: 3 })
      if (clean.violation !== undefined) continue
      t.not(run.hash, clean.hash)
      caught.push(seed)
      t.pass(`seed ${seed} over ${days} days: promise ${promise} broken (${run.violation.message}); passes without the mutant`)
      if (caught.length === seeds.length) break
    }
    if (caught.join() !== seeds.join()) t.comment(`the pinned seeds ${seeds.join(', ')} no longer all catch ${mutant}: re-pin to ${caught.join(', ')}`)
    t.ok(caught.length > 0, `caught on a seed that passes without the mutant (of ${candidates.length} tried)`)
  })
}

// The simulated hosts log to memory, scanned by the simulator itself; the suite's scan looks for their secrets too.
registerSecret(SIM_SECRET_PREFIX)

t.test('a violation names the seed, the command that replays it, and the last events', async (t) => {
  const result = await runSim({ seed: 6, days: 1, hosts: 3, mutant: 'jump-no-spacing', keepEvents: 5 })
  t.ok(result.violation)
  t.equal(result.lastEvents.length, 5)
  t.match(result.lastEvents.at(-1)!, /VIOLATION promise 3/)
  const again = await runSim({ seed: 6, days: 1, hosts: 3, mutant: 'jump-no-spacing', keepEvents: 5 })
  t.same(again.violation, result.violation, 'replays exactly')
})
