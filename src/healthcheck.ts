import { isIP } from 'node:net'
import { request } from 'undici'
import type { Env } from './config/load-config.js'

export const HEALTHCHECK_TIMEOUT_MS = 3_000

/** Where to reach a sidecar listening on `host`: the wildcard addresses are reached over loopback. */
export function probeHost (host: string): string {
  if (host === '::' || host === '0.0.0.0') return '127.0.0.1'
  return isIP(host) === 6 ? `[${host}]` : host
}

/**
 * `token-sidecar healthcheck`, for a Docker HEALTHCHECK in an image without
 * curl: GET /healthz of the sidecar the same settings describe. It needs only
 * the listen address, never a secret. Exit code 0 on 200, else 1.
 */
export async function healthcheck (env: Env): Promise<number> {
  const host = env.TOOLBRIDGE_SIDECAR_HOST || '127.0.0.1'
  const port = env.TOOLBRIDGE_SIDECAR_PORT || '8787'
  const url = `http://${probeHost(host)}:${port}/healthz`
  try {
    const res = await request(url, { reset: true, signal: AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS), headersTimeout: HEALTHCHECK_TIMEOUT_MS, bodyTimeout: HEALTHCHECK_TIMEOUT_MS })
    const body = await res.body.text()
    let status = 'unknown'
    try {
      const health = JSON.parse(body) as { status?: unknown, unavailable_audiences?: unknown }
      status = String(health.status)
      // Name the audiences without a token: the default one may be fine.
      const unavailable = health.unavailable_audiences
      if (Array.isArray(unavailable) && unavailable.length > 0) status += ` (no token for: ${unavailable.join(', ')})`
    } catch {}
    process.stdout.write(`${url}: ${res.statusCode} ${status}\n`)
    return res.statusCode === 200 ? 0 : 1
  } catch (err) {
    const code = (err as { code?: unknown }).code
    process.stdout.write(`${url}: unreachable (${typeof code === 'string' ? code : (err as Error).name})\n`)
    return 1
  }
}
