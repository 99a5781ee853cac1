import t from 'tap'
import { runSim } from '../../sim/fleet.js'
import { MUTANTS, type MutantName } from '../../sim/mutants.js'

/**
 * Each mutant puts back a fault the last review found; the simulator must
 * catch it (pinned seeds, the shortest failing runs found), and the same
 * seeds must pass without it, so what is caught is the mutant.
 */
const PINNED: Record<MutantName, { promise: number, seeds: number[], days: number }> = {
  'peer-wall-clock': { promise: 1, seeds: [30, 6], days: 1 },
  'fetch-alone-after-wait': { promise: 2, seeds: [16, 10], days: 1 },
  'jump-no-spacing': { promise: 3, seeds: [6, 11], days: 1 },
  'no-margin': { promise: 1, seeds: [9, 7], days: 11 }
}

for (const [mutant, { promise, seeds, days }] of Object.entries(PINNED) as Array<[MutantName, typeof PINNED[MutantName]]>) {
  t.test(`${mutant}: ${MUTANTS[mutant]}`, async (t) => {
    for (const seed of seeds) {
      const caught = await runSim({ seed, days, hosts: 3, mutant })
      t.equal(caught.violation?.promise, promise, `seed ${seed}: promise ${promise} broken (${caught.violation?.message ?? 'nothing caught'})`)
      const clean = await runSim({ seed, days, hosts: 3 })
      t.equal(clean.violation, undefined, `seed ${seed} passes without the mutant`)
      t.not(caught.hash, clean.hash)
    }
  })
}

t.test('a violation names the seed, the command that replays it, and the last events', async (t) => {
  const result = await runSim({ seed: 6, days: 1, hosts: 3, mutant: 'jump-no-spacing', keepEvents: 5 })
  t.ok(result.violation)
  t.equal(result.lastEvents.length, 5)
  t.match(result.lastEvents.at(-1)!, /VIOLATION promise 3/)
  const again = await runSim({ seed: 6, days: 1, hosts: 3, mutant: 'jump-no-spacing', keepEvents: 5 })
  t.same(again.violation, result.violation, 'replays exactly')
})
