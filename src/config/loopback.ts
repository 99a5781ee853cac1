import { isIP } from 'node:net'

/** True for localhost, 127.0.0.0/8 and ::1 (bracketed or not, as URL.hostname gives IPv6). */
export function isLoopbackHost (host: string): boolean {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  if (bare.toLowerCase() === 'localhost') return true
  if (isIP(bare) === 4) return bare.startsWith('127.')
  return bare === '::1' || bare === '0:0:0:0:0:0:0:1'
}
