// The benchmark's statistics, one home for every scenario.

/** Linear-interpolated quantile of a list of numbers. */
export const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b)
  const at = (s.length - 1) * q
  const lo = Math.floor(at)
  return s[lo] + (s[Math.ceil(at)] - s[lo]) * (at - lo)
}
export const median = (xs) => quantile(xs, 0.5)
