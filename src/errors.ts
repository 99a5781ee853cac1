/**
 * The project's one error convention, as src/client/errors.ts follows it: a
 * class per kind of failure, `name` from the class, a stable `code` that
 * operators and tests match on, and an HTTP `statusCode` where one applies.
 * Messages never carry a token or secret. A leaf module: every layer may use it.
 */
export class SidecarFailure extends Error {
  readonly code: string

  constructor (message: string, code: string, options?: ErrorOptions) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}
