/** What replaces a secret found in text that came from outside. */
export const REDACTED = '[redacted]'

/** Forms a secret takes when a server echoes a request back: as sent in a form or JSON body, or in Basic auth. */
function variants (value: string): string[] {
  const form = new URLSearchParams({ v: value }).toString().slice(2)
  return [
    value,
    encodeURIComponent(value),
    form,
    JSON.stringify(value).slice(1, -1),
    Buffer.from(value).toString('base64'),
    Buffer.from(value).toString('base64url')
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
