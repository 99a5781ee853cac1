import { get } from 'node:http'
import { isIP } from 'node:net'
import type { Env } from './config/load-config.js'
import { DEFAULTS } from './config/defaults.js'

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
  const host = env.TOOLBRIDGE_SIDECAR_HOST || DEFAULTS.host
  const port = env.TOOLBRIDGE_SIDECAR_PORT || String(DEFAULTS.port)
  const url = `http://${probeHost(host)}:${port}/healthz`
  try {
    // node:http, not undici: the image runs this probe every 15 s, and undici alone costs it 190 ms of CPU.
    const { statusCode, body } = await new Promise<{ statusCode: number, body: string }>((resolve, reject) => {
      const req = get(url, { agent: false, signal: AbortSignal.timeout(HEALTHCHECK_TIMEOUT_MS) }, (res) => {
        let text = ''
        res.setEncoding('utf8').on('data', (chunk: string) => { text += chunk })
        res.once('end', () => resolve({ statusCode: res.statusCode!, body: text }))
        res.once('error', reject)
      })
      req.once('error', reject)
    })
    let status = 'unknown'
    try {
      const health = JSON.parse(body) as { status?: unknown, unavailable_audiences?: unknown }
      status = String(health.status)
      // Name the audiences without a token: the default one may be fine.
      const unavailable = health.unavailable_audiences
      if (Array.isArray(unavailable) && unavailable.length > 0) status += ` (no token for: ${unavailable.join(', ')})`
    } catch {}
    process.stdout.write(`${url}: ${statusCode} ${status}\n`)
    return statusCode === 200 ? 0 : 1
  } catch (err) {
    // A timeout aborts the request with the signal's reason, a TimeoutError.
    const cause = (err as { cause?: unknown }).cause ?? err
    const code = (cause as { code?: unknown }).code
    process.stdout.write(`${url}: unreachable (${typeof code === 'string' ? code : (cause as Error).name})\n`)
    return 1
  }
}
