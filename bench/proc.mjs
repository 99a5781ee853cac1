// What the benchmark reads about a process from /proc, and where it runs it.
import { execFileSync, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'

const CLOCK_TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

/** CPU time (user + system) a process has used, in µs; from /proc/<pid>/stat. */
export function cpuMicros (pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  // The command name may contain spaces: fields are counted after its closing parenthesis.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const ticks = Number(fields[11]) + Number(fields[12])
  return ticks * 1e6 / CLOCK_TICKS
}

/** VmRSS and VmHWM (peak) of a process, in kB. */
export function memory (pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)[1])
  return { rss: field('VmRSS'), peak: field('VmHWM') }
}

/**
 * On a machine with two cores or more, servers run on core 1 and the load
 * generator (this process) on core 0, so neither steals the other's cycles.
 */
export const PINNED = availableParallelism() >= 2
if (PINNED) execFileSync('taskset', ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' })

/** Spawns `node argv…` on the server core. */
export function spawnNode (argv, env, stdio) {
  const [command, args] = PINNED
    ? ['taskset', ['-c', '1', process.execPath, ...argv]]
    : [process.execPath, argv]
  return spawn(command, args, { env: { PATH: process.env.PATH, ...env }, stdio })
}
