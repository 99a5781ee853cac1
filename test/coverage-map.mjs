// tap coverage map: report on the sidecar's sources only, whatever a test runs
// (the benchmark smoke test runs bench/ scripts, which are tools, not product).
import { readdirSync } from 'node:fs'

const sources = readdirSync('src', { recursive: true })
  .filter((name) => String(name).endsWith('.ts'))
  .map((name) => `src/${String(name)}`)

export default () => sources
