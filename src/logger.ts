import { pino, type DestinationStream, type Logger } from 'pino'

/** Belt and braces: the code never logs these, but a future log call must not leak them either. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'headers.authorization',
  'authorization',
  'access_token',
  'client_secret',
  '*.access_token',
  '*.client_secret',
  // Node's clientError carries the raw request bytes, Authorization header included.
  'err.rawPacket',
  'rawPacket',
  '*.rawPacket'
]

/** JSON lines on stdout, ISO timestamps and level names, as log shippers expect. */
export function createLogger (level: string, destination?: DestinationStream): Logger {
  return pino({
    name: 'token-sidecar',
    level,
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' }
  }, destination ?? pino.destination({ fd: 1, sync: true }))
}

/**
 * For a person running `--dev` in a terminal: pino-pretty, a devDependency.
 * Where it is not installed (the production image), JSON lines as always.
 * The specifier is a parameter (and so a variable, as it must be: pino-pretty
 * and its types are absent where the image compiles) so a test can name a
 * package that is not there.
 */
export async function prettyDestination (specifier = 'pino-pretty'): Promise<DestinationStream | undefined> {
  let pretty: (opts: object) => DestinationStream
  try {
    pretty = (await import(specifier) as { default: typeof pretty }).default
  } catch {
    return undefined
  }
  return pretty({ destination: 1, sync: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
}
