import t from 'tap'
import { runCiSeeds } from '../fixtures/sim-seeds.js'

// CI's fixed seeds, part 4 of 5 (test/fixtures/sim-seeds.ts).
await runCiSeeds(t, 3, 5)
