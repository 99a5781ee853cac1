import { randomInt } from 'node:crypto'
import { parseArgs } from 'node:util'
import { CI_DAYS, CI_HOSTS, CI_SEEDS, replayCommand, runCiSeed } from './ci.js'
import { runSim, type SimResult } from './fleet.js'
import { isMutant, MUTANTS, type MutantName } from './mutants.js'

const USAGE = `usage: npm run sim -- [--seed S] [--days D] [--hosts H] [--mutant NAME] [--limit N]
  --seed S     run this seed once (without it: new random seeds until one fails or --limit runs)
  --days D     simulated days per run (default 30)
  --hosts H    sidecars in the fleet (default 3)
  --mutant M   put back a fault the simulator must catch: ${Object.keys(MUTANTS).join(', ')}
  --limit N    without --seed: stop after N runs (default 1000)
  --quiet      one line per run only
  --trace      print every event and every log line of every host
  --without K  leave out events of kind K (repeatable), e.g. to hunt past a known fault
  --ci         CI's fixed seeds (${CI_SEEDS.length} seeds, ${CI_DAYS} days, ${CI_HOSTS} hosts); fails on any violation`


function report (result: SimResult, ms: number): void {
  const { stats } = result
  const outcome = result.violation === undefined ? 'ok' : `VIOLATION of promise ${result.violation.promise} at day ${(result.violation.at / 86_400_000).toFixed(3)}`
  console.log(`seed ${result.seed}: ${outcome} | ${stats.events} events, ${stats.upstreamRequests} upstream requests, ${stats.served} tokens served, ${Object.values(stats.faults).reduce((a, b) => a + b, 0)} faults | ${JSON.stringify(result.config)} | ${(ms / 1000).toFixed(2)} s | ${result.hash.slice(0, 16)}`)
  if (result.violation === undefined) return
  console.log(`\n${result.violation.message}\n\nreplay: ${replayCommand(result)}\n\nlast events before it (true time in s):`)
  for (const line of result.lastEvents) console.log(`  ${line}`)
}

async function main (): Promise<number> {
  const { values } = parseArgs({
    options: {
      seed: { type: 'string' },
      days: { type: 'string', default: '30' },
      hosts: { type: 'string', default: '3' },
      mutant: { type: 'string' },
      limit: { type: 'string', default: '1000' },
      quiet: { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      without: { type: 'string', multiple: true, default: [] },
      ci: { type: 'boolean', default: false },
      help: { type: 'boolean', default: false }
    }
  })
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  if (values.ci) return await ci()
  const days = Number(values.days)
  const hosts = Number(values.hosts)
  const limit = Number(values.limit)
  if (!(days > 0) || !Number.isInteger(hosts) || hosts < 1 || !Number.isInteger(limit) || limit < 1) {
    console.error(USAGE)
    return 2
  }
  let mutant: MutantName | undefined
  if (values.mutant !== undefined) {
    if (!isMutant(values.mutant)) {
      console.error(`unknown mutant ${values.mutant}\n${USAGE}`)
      return 2
    }
    mutant = values.mutant
  }
  const seeds = values.seed === undefined ? undefined : [Number(values.seed)]
  if (seeds !== undefined && !Number.isInteger(seeds[0])) {
    console.error(USAGE)
    return 2
  }
  const runs = seeds?.length ?? limit
  for (let i = 0; i < runs; i++) {
    // A new seed is drawn outside any run; the run itself is a function of its seed.
    const seed = seeds?.[i] ?? randomInt(0, 2 ** 32 - 1)
    const started = performance.now()
    const result = await runSim({ seed, days, hosts, mutant, trace: values.trace, without: values.without })
    if (!values.quiet || result.violation !== undefined) report(result, performance.now() - started)
    if (result.violation !== undefined) return 1
  }
  return 0
}

async function ci (): Promise<number> {
  const started = performance.now()
  const cpu = process.cpuUsage()
  let failed = 0
  for (const seed of CI_SEEDS) {
    const result = await runCiSeed(seed)
    if (result.violation !== undefined) {
      failed++
      report(result, 0)
    }
  }
  const used = process.cpuUsage(cpu)
  console.log(`${CI_SEEDS.length} seeds × ${CI_DAYS} days × ${CI_HOSTS} hosts: ${failed} failed, ${CI_SEEDS.length - failed} passed | ${((performance.now() - started) / 1000).toFixed(1)} s, ${((used.user + used.system) / 1e6).toFixed(1)} s CPU`)
  return failed === 0 ? 0 : 1
}

process.exitCode = await main()
