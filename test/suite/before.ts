import { rmSync } from 'node:fs'
import { SUITE_LOG_DIR } from '../fixtures/suite-paths.js'

// A fresh log folder per run, so test/suite/after.ts scans only this run.
rmSync(SUITE_LOG_DIR, { recursive: true, force: true })
