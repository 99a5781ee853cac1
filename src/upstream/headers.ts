/** Response headers as undici and node:http hand them over: a repeated header is an array. */
export type Headers = Readonly<Record<string, string | string[] | undefined>>

/** Every value of a header, whatever the case of its name, in the order received. */
function values (headers: Headers, name: string): string[] {
  const lower = name.toLowerCase()
  const found: string[] = []
  for (const [key, value] of Object.entries(headers)) {
    if (value === undefined || key.toLowerCase() !== lower) continue
    if (Array.isArray(value)) found.push(...value)
    else found.push(value)
  }
  return found
}

/** A single-valued header: its first value; a repeat is a sender's slip and does not count. */
export function firstHeader (headers: Headers, name: string): string | undefined {
  return values(headers, name)[0]
}

/** A list-valued header: repeated lines joined by commas, as RFC 9110 §5.3 reads them. */
export function listHeader (headers: Headers, name: string): string | undefined {
  const found = values(headers, name)
  return found.length === 0 ? undefined : found.join(',')
}
