// Preloaded with `node -r` into a short-lived process: at exit, its CPU time and
// peak RSS (getrusage) go to stderr as one JSON line for bench/lean.mjs.
'use strict'
process.once('exit', () => {
  const { userCPUTime, systemCPUTime, maxRSS } = process.resourceUsage()
  process.stderr.write(`\n{"rusage":{"cpuUs":${userCPUTime + systemCPUTime},"maxRssKb":${maxRSS}}}\n`)
})
