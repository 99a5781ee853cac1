/**
 * A small seeded PRNG (sfc32, seeded through splitmix32): the only source of
 * chance in a run, so a seed replays exactly. `fork` derives an independent
 * stream per purpose, so adding a draw in one place does not reshuffle the rest.
 */
export class Prng {
  #a: number
  #b: number
  #c: number
  #d: number

  constructor (seed: number) {
    let s = seed >>> 0
    const split = (): number => {
      s = (s + 0x9e3779b9) >>> 0
      let z = s
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0
      return (z ^ (z >>> 16)) >>> 0
    }
    this.#a = split()
    this.#b = split()
    this.#c = split()
    this.#d = split()
    for (let i = 0; i < 12; i++) this.next()
  }

  /** Uniform in [0, 1). */
  next (): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0
    this.#d = (this.#d + 1) >>> 0
    this.#a = this.#b ^ (this.#b >>> 9)
    this.#b = (this.#c + (this.#c << 3)) >>> 0
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0
    this.#c = (this.#c + t) >>> 0
    return t / 4294967296
  }

  /** Integer in [lo, hi]. */
  int (lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1))
  }

  range (lo: number, hi: number): number {
    return lo + this.next() * (hi - lo)
  }

  chance (p: number): boolean {
    return this.next() < p
  }

  pick<T> (items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!
  }

  /** Exponentially distributed with this mean (Poisson arrivals). */
  exp (mean: number): number {
    return -Math.log(1 - this.next()) * mean
  }

  /** An independent stream for one purpose, from this stream's state and a label. */
  fork (label: string): Prng {
    let h = Math.floor(this.next() * 4294967296)
    for (let i = 0; i < label.length; i++) h = Math.imul(h ^ label.charCodeAt(i), 0x01000193) >>> 0
    return new Prng(h)
  }
}
