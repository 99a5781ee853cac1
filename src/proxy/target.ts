/**
 * Why a request target must not be forwarded, or undefined when it may.
 * The proxy sends every request to its one target; these checks keep a
 * request from naming another host (absolute-form, `*`) or from reaching
 * another path than it shows once the API normalises it (dot segments,
 * encoded slashes or backslashes, which servers decode differently).
 */
export function unsafeTarget (url: string): string | undefined {
  if (url.charCodeAt(0) !== 47) return 'the request target must be a path (origin-form), not an absolute URL or *'
  const query = url.indexOf('?')
  const path = query === -1 ? url : url.slice(0, query)
  if (path.includes('\\')) return 'the path must not contain a backslash'
  // A malformed percent-encoding never gets here: Fastify answers 400 first.
  if (path.includes('%')) {
    const lower = path.toLowerCase()
    if (lower.includes('%2f') || lower.includes('%5c')) return 'the path must not contain an encoded slash or backslash'
  }
  if (path.includes('.') || path.includes('%')) {
    for (const segment of path.split('/')) {
      const plain = segment.toLowerCase().replaceAll('%2e', '.')
      if (plain === '.' || plain === '..') return 'the path must not contain . or .. segments'
    }
  }
  return undefined
}
