import t from 'tap'
import { runCiSeeds } from '../fixtures/sim-seeds.js'

// CI's fixed seeds, part 3 of 5 (test/fixtures/sim-seeds.ts).
await runCiSeeds(t, 2, 5)
