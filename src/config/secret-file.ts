import { closeSync, constants, fstatSync, openSync, readSync, type Stats } from 'node:fs'
import { open } from 'node:fs/promises'
import { SidecarFailure } from '../errors.js'

/** A secret or key file is a few hundred bytes; anything far larger is a wrong path. */
export const MAX_SECRET_FILE_BYTES = 64 * 1024

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, freezing the process.
const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK

/** Why a `_FILE` path cannot be used; the message never holds file content. */
export class SecretFileError extends SidecarFailure {
  constructor (reason: string) {
    super(reason, 'SECRET_FILE_UNUSABLE')
  }
}

function check (stats: Stats): void {
  if (!stats.isFile()) throw new SecretFileError('not a regular file')
}

function unreadable (err: unknown): SecretFileError {
  const code = (err as { code?: unknown }).code
  /* c8 ignore next -- Node's fs errors always carry a code; keep a word for one that does not */
  return new SecretFileError(typeof code === 'string' ? code : 'unreadable')
}

/** Counted from what was read, not from fstat: /proc files say 0, and a file can grow meanwhile. */
function text (buffer: Buffer, length: number): string {
  if (length > MAX_SECRET_FILE_BYTES) throw new SecretFileError(`larger than ${MAX_SECRET_FILE_BYTES / 1024} KiB`)
  return buffer.toString('utf8', 0, length)
}

/**
 * Reads a secret file at start-up: only a regular file of at most 64 KiB,
 * opened so that a FIFO or device cannot block. Throws a SecretFileError.
 */
export function readSecretFileSync (path: string): string {
  let fd: number
  try {
    fd = openSync(path, FLAGS)
  } catch (err) {
    throw unreadable(err)
  }
  try {
    check(fstatSync(fd))
    const buffer = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1)
    return text(buffer, readSync(fd, buffer, 0, buffer.length, 0))
  } finally {
    closeSync(fd)
  }
}

/** The same rules, off the event loop: for SIGHUP reloads while requests are served. */
export async function readSecretFile (path: string): Promise<string> {
  let handle
  try {
    handle = await open(path, FLAGS)
  } catch (err) {
    throw unreadable(err)
  }
  try {
    check(await handle.stat())
    const buffer = Buffer.alloc(MAX_SECRET_FILE_BYTES + 1)
    const { bytesRead } = await handle.read(buffer, 0, buffer.length, 0)
    return text(buffer, bytesRead)
  } finally {
    await handle.close()
  }
}
