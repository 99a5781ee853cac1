import { type Clock, type ServedToken, type Serving } from '../engine/types.js'
import { remainingMs } from '../engine/clock.js'

export const JSON_TYPE = 'application/json; charset=utf-8'

/** The headers of every token answer, in the order both of GET /token's paths write them. */
export const TOKEN_HEADERS = Object.freeze({ 'content-type': JSON_TYPE, 'cache-control': 'no-store' })

function serialize (token: ServedToken, expiresIn: number | null): string {
  return JSON.stringify({
    access_token: token.accessToken,
    token_type: 'Bearer',
    expires_in: expiresIn,
    expires_at: token.expiresAtIso
  })
}

/**
 * The JSON answer of GET /token and POST /token/refresh. On the hot path it
 * is serialized once per Serving (a token and its whole seconds left) rather
 * than on every request: the body changes only when one of them does.
 */
export class TokenBody {
  readonly #clock: Clock
  #serving: Serving | undefined
  #json = ''
  #head: Readonly<Record<string, string>> = TOKEN_HEADERS

  constructor (clock: Clock) {
    this.#clock = clock
  }

  cached (serving: Serving): string {
    if (serving !== this.#serving) {
      this.#serving = serving
      this.#json = serialize(serving.token, serving.expiresIn)
      this.#head = Object.freeze({ ...TOKEN_HEADERS, 'content-length': String(Buffer.byteLength(this.#json)) })
    }
    return this.#json
  }

  /** TOKEN_HEADERS and the length of the body cached() returned last, as Fastify would write them. */
  get cachedHead (): Readonly<Record<string, string>> {
    return this.#head
  }

  /** For the slow paths (after a wait or a forced refresh): built afresh. */
  fresh (token: ServedToken): string {
    const left = remainingMs(token, this.#clock)
    return serialize(token, left === null ? null : Math.floor(left / 1000))
  }
}
