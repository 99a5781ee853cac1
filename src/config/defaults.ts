/**
 * The defaults a sidecar runs with, in one place: the environment's schema,
 * the healthcheck probe, dev mode and the HTTP app read them here. A leaf
 * module with no imports, so the light entry points (the probe) stay light.
 */
export const DEFAULTS = Object.freeze({
  host: '127.0.0.1',
  port: 8787,
  proxyPort: 8788,
  domain: 'dev-zysv6k3xo7pkwmcb.us.auth0.com',
  audience: 'https://toolbridgeapi.erauner.dev',
  maxConnections: 1024
})

/** TOOLBRIDGE_AUTH0_AUDIENCE: audiences separated by commas and/or whitespace, in order, without repeats. */
export function audienceList (value: string): string[] {
  return [...new Set(value.split(/[\s,]+/).filter((a) => a !== ''))]
}
