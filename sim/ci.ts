import { runSim, type SimResult } from './fleet.js'

/** The seeds CI runs: 100 seeds of a 3-sidecar fleet over 30 simulated days. */
export const CI_SEEDS = Array.from({ length: 100 }, (_, i) => i + 1)
export const CI_DAYS = 30
export const CI_HOSTS = 3

export function replayCommand (result: SimResult): string {
  return `npm run sim -- --seed ${result.seed} --days ${result.days} --hosts ${result.hosts}${result.mutant === undefined ? '' : ` --mutant ${result.mutant}`}${result.without.map((k) => ` --without ${k}`).join('')}`
}

export async function runCiSeed (seed: number): Promise<SimResult> {
  return await runSim({ seed, days: CI_DAYS, hosts: CI_HOSTS })
}
