import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { join } from 'node:path'
import t from 'tap'
import { ROOT } from './fixtures/suite-paths.js'

const run = promisify(execFile)
const BENCH = join(ROOT, 'bench/run.mjs')
// The sidecar secret and client secret bench/run.mjs gives its sidecars: none of its output shows them.
const SECRETS = ['bench-sidecar-secret-0123456789abcdef0123456789', 'bench-client-secret']

// A smoke test only: the figures come from `npm run bench`; nothing here is timed.
// Only PATH (and BENCH_NGINX, if set) is passed on, so the benchmark's processes
// stay out of the coverage report.
t.setTimeout(240_000)
t.test('the benchmark runs briefly and prints its tables', async (t) => {
  const env = { PATH: process.env.PATH, ...(process.env.BENCH_NGINX === undefined ? {} : { BENCH_NGINX: process.env.BENCH_NGINX }) }
  const { stdout, stderr } = await run(process.execPath, [BENCH, '--rounds', '1', '--duration', '1', '--warmup', '0.5', '--rate', '500', '--connections', '2', '--starts', '1', '--memory-rounds', '1', '--probes', '1', '--burst', '50', '--requests', '2000', '--proxy-rounds', '1', '--proxy-requests', '200', '--fleet', '2', '--fleet-restarts', '1', '--fleet-lifetimes', '0'], { timeout: 210_000, env })
  for (const secret of SECRETS) t.notOk((stdout + stderr).includes(secret), 'no secret in the benchmark\'s output')
  // CPU per request against both baselines, both ratios.
  t.match(stdout, /\| sidecar \(`GET \/token`, info logging\) \| [\d.]+ \| \d+ \|/)
  t.match(stdout, /\| bare Fastify route, same body and headers \| [\d.]+ \| \d+ \|.*no logger/)
  t.match(stdout, /\| bare Fastify route with prom-client default metrics \| [\d.]+ \| \d+ \|/)
  t.match(stdout, /CPU ratio bare Fastify ÷ sidecar: \*\*\d+\.\d{3}\*\* \(median of paired rounds; interquartile range/)
  t.match(stdout, /CPU ratio bare Fastify with default metrics ÷ sidecar: \*\*\d+\.\d{3}\*\* \(median of paired rounds; interquartile range/)
  // Start-up, memory and the probe (issue 23).
  t.match(stdout, /\| sidecar \| \d+ \| [\d.]+× \| [\d.]+× \| \d+ \| [\d.]+× \|/, 'start-up against node -e \'\' and bare Fastify')
  t.match(stdout, /\| bare Fastify \| \d+ \| [\d.]+× \| 1\.00× \|/)
  t.match(stdout, /\| sidecar \| [\d.]+ MB \| [\d.]+× \| [\d.]+ MB \| [\d.]+× \| 0 \| 0 \|/, 'idle and high-water RSS against bare Fastify')
  t.match(stdout, /\| token-sidecar healthcheck \| [\d.]+ \| [\d.]+× \| [\d.]+ MiB \|/, 'the probe\'s CPU and peak')
  t.match(stdout, /\| loop over the expected length \(used\) \| \d+ \|/)
  t.match(stdout, /\| 50 \| 50 \| 1 \| \d+ ms \|/, 'all 50 answered from one upstream request')
  // The proxy against direct calls and nginx (issue 22); nginx is left out with a note where it is missing.
  t.match(stdout, /\(1 paired rounds × 200 requests per path\)/)
  t.match(stdout, /\| direct to the API, token in hand \| [\d.]+ \| [\d.]+ \| [\d.]+ \| – \| – \| 0 \|/)
  t.match(stdout, /\| through the sidecar's proxy \| [\d.]+ \| [\d.]+ \| [\d.]+ \| -?[\d.]+ \| -?[\d.]+ \| 0 \|/, 'the proxy, measured against direct calls')
  if (/CPU ratio proxy ÷ nginx: not measured \((nginx is not installed|left out)/.test(stdout)) {
    t.pass('no nginx on this machine, and the output says so (the next test covers that case)')
  } else {
    t.match(stdout, /\| through nginx \(`proxy_set_header Authorization`\) \| [\d.]+ \| [\d.]+ \| [\d.]+ \| -?[\d.]+ \| -?[\d.]+ \| 0 \|/, 'nginx, measured in the same rounds')
    // 200 requests may cost nginx less than one /proc clock tick: then the ratio is not given, and the output says why.
    t.match(stdout, /CPU per request, sidecar's proxy ÷ nginx: \*\*\d+\.\d\d\*\*|CPU ratio proxy ÷ nginx: not measured \(nginx used less CPU time than \/proc can count/)
  }
  // The fleet.
  t.match(stdout, /\| 2 \| per process \(no store\) \| 2 \| 0 \| 2 \| \*\*4\*\* \|/, 'without a store: every process fetches, at start-up and on restart')
  t.match(stdout, /\| 2 \| shared store \(Redis\) \| 1 \| 0 \| 0 \| \*\*1\*\* \|/, 'with one: one token for the fleet')
  t.match(stdout, /machine: /)
})

t.test('without nginx the proxy comparison runs against direct calls and says why nginx is missing', async (t) => {
  const { stdout, stderr } = await run(process.execPath, [BENCH, '--proxy-only', '--proxy-rounds', '1', '--proxy-requests', '50'], { timeout: 60_000, env: { PATH: process.env.PATH, BENCH_NGINX: '/nonexistent/nginx' } })
  for (const secret of SECRETS) t.notOk((stdout + stderr).includes(secret), 'no secret in the benchmark\'s output')
  t.match(stdout, /\| through the sidecar's proxy \| [\d.]+ \|/)
  t.notMatch(stdout, /through nginx/)
  t.match(stdout, /CPU ratio proxy ÷ nginx: not measured \(nginx is not installed at BENCH_NGINX=\/nonexistent\/nginx\)/)
})
