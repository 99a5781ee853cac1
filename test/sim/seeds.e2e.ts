import t from 'tap'
import { CI_SEEDS } from '../../sim/ci.js'
import { runCiSeeds } from '../fixtures/sim-seeds.js'

// The first ten of CI's seeds under npm test; all 100 run in `npm run sim:ci` (.ci/run), outside tap,
// whose coverage instrumentation would double their cost.
await runCiSeeds(t, CI_SEEDS.slice(0, 10))
