import t from 'tap'
import { AssertionAlgError, AssertionKeyError } from '../src/config/assertion-key.js'
import { ConfigError } from '../src/config/load-config.js'
import { SecretFileError } from '../src/config/secret-file.js'
import { DevModeError } from '../src/dev/dev-mode.js'
import { TokenRequestError, TokenUnavailableError } from '../src/engine/errors.js'
import { SidecarFailure } from '../src/errors.js'
import { BadRequestError } from '../src/http/errors.js'
import { BodyTooLargeError } from '../src/proxy/body.js'

// One convention (src/errors.ts): a class per kind, `name` from the class, a stable
// `code`, and `statusCode` where an HTTP status applies. Operators and tests match on codes.
t.test('every error kind: its class name, a stable code, a status where one applies', async (t) => {
  const cases: Array<[SidecarFailure, string, string, number | undefined]> = [
    [new ConfigError('TOOLBRIDGE_X', 'TOOLBRIDGE_X: bad'), 'ConfigError', 'CONFIG_INVALID', undefined],
    [new SecretFileError('a directory'), 'SecretFileError', 'SECRET_FILE_UNUSABLE', undefined],
    [new AssertionKeyError('not a private key'), 'AssertionKeyError', 'ASSERTION_KEY_UNUSABLE', undefined],
    [new AssertionAlgError('ES256', 'an RSA key'), 'AssertionAlgError', 'ASSERTION_ALG_MISMATCH', undefined],
    [new DevModeError('--dev refuses'), 'DevModeError', 'DEV_MODE_REFUSED', undefined],
    [new TokenRequestError('answered 401', { kind: 'config_error', code: 'HTTP_401', status: 401 }), 'TokenRequestError', 'HTTP_401', undefined],
    [new TokenUnavailableError('no token', 5), 'TokenUnavailableError', 'TOKEN_UNAVAILABLE', 503],
    [new BadRequestError('the body is not valid JSON'), 'BadRequestError', 'INVALID_REQUEST', 400],
    [new BodyTooLargeError(10), 'BodyTooLargeError', 'PROXY_BODY_TOO_LARGE', 413]
  ]
  for (const [err, name, code, status] of cases) {
    t.ok(err instanceof SidecarFailure && err instanceof Error, `${name} is a SidecarFailure`)
    t.equal(err.name, name, `${name}: name from the class`)
    t.equal(err.code, code, `${name}: code ${code}`)
    t.equal((err as { statusCode?: number }).statusCode, status, `${name}: status ${String(status)}`)
  }
  const cause = new Error('socket hang up')
  t.equal(new TokenRequestError('failed', { kind: 'network_error', code: 'ECONNRESET', cause }).cause, cause, 'a cause is kept')
})
