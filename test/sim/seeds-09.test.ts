import t from 'tap'
import { runCiSeeds } from '../fixtures/sim-seeds.js'

// CI's fixed seeds, part 9 of 10 (test/fixtures/sim-seeds.ts): ten seeds a file keep each well inside tap's 120-s file timeout on a loaded machine.
await runCiSeeds(t, 8, 10)
