/** What replaces a secret found in text that came from outside. */
export const REDACTED = '[redacted]'

/** A base64 run shorter than this is not scrubbed on its own: it would match ordinary text. */
const MIN_EMBEDDED_CHARS = 8

/**
 * The part of any base64 (or base64url) text that encodes `bytes`, wherever
 * they sit in the encoded input: one run per alignment (the bytes may start at
 * any offset modulo 3), without the characters shared with the bytes around
 * them. `Basic base64(id:secret)` embeds the secret this way, and so does an
 * echoed header that was base64-encoded again.
 */
function embeddedBase64 (bytes: Buffer, encoding: 'base64' | 'base64url'): string[] {
  const runs: string[] = []
  for (let offset = 0; offset < 3; offset++) {
    const encoded = Buffer.concat([Buffer.alloc(offset), bytes]).toString(encoding)
    // Characters whose six bits all come from `bytes`.
    const run = encoded.slice(Math.ceil(offset * 8 / 6), Math.floor((offset + bytes.length) * 8 / 6))
    if (run.length >= MIN_EMBEDDED_CHARS) runs.push(run)
  }
  return runs
}

/**
 * Forms a secret takes when a server echoes a request back: as sent in a form
 * or JSON body, or inside `Authorization: Basic` (RFC 6749 §2.3.1: the
 * form-encoded id and secret, base64 or base64url, with or without padding).
 */
function variants (value: string): string[] {
  const form = new URLSearchParams({ v: value }).toString().slice(2)
  return [
    value,
    encodeURIComponent(value),
    form,
    JSON.stringify(value).slice(1, -1),
    Buffer.from(value).toString('base64'),
    Buffer.from(value).toString('base64url'),
    ...[...new Set([value, form])].flatMap((text) => [
      ...embeddedBase64(Buffer.from(text), 'base64'),
      ...embeddedBase64(Buffer.from(text), 'base64url')
    ])
  ]
}

/**
 * Cleans text that comes from the token endpoint (an error_description, an
 * HTML error page) before it reaches a log: every configured secret value is
 * removed, control characters are flattened, and the length is capped.
 */
export class SecretScrubber {
  #forms: string[] = []

  /**
   * Adds a secret value. A rotated-out value stays: it is still a secret, and
   * a server may still echo it.
   */
  add (value: string | undefined): void {
    if (value === undefined || value === '') return
    this.#forms = [...new Set([...this.#forms, ...variants(value)])].sort((a, b) => b.length - a.length)
  }

  scrub (text: string, maxChars: number): string {
    let clean = text
    for (const form of this.#forms) clean = clean.replaceAll(form, REDACTED)
    // eslint-disable-next-line no-control-regex
    clean = clean.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]+/g, ' ').replace(/\s{2,}/g, ' ').trim()
    return clean.length > maxChars ? `${clean.slice(0, maxChars)}…` : clean
  }
}
