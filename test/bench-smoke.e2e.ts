import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

const run = promisify(execFile)
const BENCH = fileURLToPath(new URL('../bench/run.mjs', import.meta.url))

// A smoke test only: the figures come from `npm run bench`; nothing here is timed.
// Only PATH is passed on, so the benchmark's processes stay out of the coverage report.
t.setTimeout(180_000)
t.test('the benchmark runs briefly and prints its tables', async (t) => {
  const { stdout } = await run(process.execPath, [BENCH, '--rounds', '1', '--duration', '1', '--warmup', '0.5', '--rate', '500', '--connections', '2', '--starts', '1', '--memory-rounds', '1', '--probes', '1', '--burst', '50', '--requests', '2000', '--fleet', '2', '--fleet-restarts', '1', '--fleet-lifetimes', '0'], { timeout: 150_000, env: { PATH: process.env.PATH } })
  t.match(stdout, /\| sidecar \(`GET \/token`, info logging\) \| [\d.]+ \| \d+ \|/)
  t.match(stdout, /\| bare Fastify route, same body and headers \| [\d.]+ \| \d+ \|/)
  t.match(stdout, /CPU ratio baseline ÷ sidecar: \*\*\d\.\d{3}\*\* \(median of paired rounds; interquartile range/)
  t.match(stdout, /\| sidecar \| \d+ \| [\d.]+× \| [\d.]+× \| \d+ \| [\d.]+× \|/, 'start-up against node -e \'\' and bare Fastify')
  t.match(stdout, /\| bare Fastify \| \d+ \| [\d.]+× \| 1\.00× \|/)
  t.match(stdout, /\| sidecar \| [\d.]+ MB \| [\d.]+× \| [\d.]+ MB \| [\d.]+× \| 0 \| 0 \|/, 'idle and high-water RSS against bare Fastify')
  t.match(stdout, /\| token-sidecar healthcheck \| [\d.]+ \| [\d.]+× \| [\d.]+ MiB \|/, 'the probe\'s CPU and peak')
  t.match(stdout, /\| loop over the expected length \(used\) \| \d+ \|/)
  t.match(stdout, /\| 50 \| 50 \| 1 \| \d+ ms \|/, 'all 50 answered from one upstream request')
  t.match(stdout, /\| 2 \| per process \(no store\) \| 2 \| 0 \| 2 \| \*\*4\*\* \|/, 'without a store: every process fetches, at start-up and on restart')
  t.match(stdout, /\| 2 \| shared store \(Redis\) \| 1 \| 0 \| 0 \| \*\*1\*\* \|/, 'with one: one token for the fleet')
  t.match(stdout, /machine: /)
})
