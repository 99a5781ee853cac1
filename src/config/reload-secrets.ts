import { ConfigError, FILE_VARIABLES, readFileVariable, type Env, type ReadFile } from './load-config.js'
import { EXPECTATIONS } from './schema.js'

export type SecretName = typeof FILE_VARIABLES[number]

export interface SecretReload {
  /** New values of the secrets whose files changed. */
  changed: Partial<Record<SecretName, string>>
  unchanged: SecretName[]
  /** Rejected files, with a reason that never contains the value. */
  rejected: Array<{ variable: string, reason: string }>
}

const MIN_LENGTH: Partial<Record<SecretName, number>> = { TOOLBRIDGE_SIDECAR_SECRET: 32 }

/**
 * Re-reads the `..._FILE` secrets (values given directly in the environment
 * cannot change in a running process) and checks them with the start-up rules.
 */
export function reloadSecrets (env: Env, current: Partial<Record<SecretName, string>>, readFile?: ReadFile): SecretReload {
  const result: SecretReload = { changed: {}, unchanged: [], rejected: [] }
  for (const name of FILE_VARIABLES) {
    if (!env[`${name}_FILE`]) continue
    let value: string
    try {
      // The path is set, so this returns a value or throws.
      value = readFileVariable({ [`${name}_FILE`]: env[`${name}_FILE`] }, name, readFile)!
    } catch (err) {
      result.rejected.push({ variable: `${name}_FILE`, reason: (err as ConfigError).message })
      continue
    }
    const minLength = MIN_LENGTH[name] ?? 1
    if (value.length < minLength) {
      result.rejected.push({ variable: `${name}_FILE`, reason: `${name}_FILE: expected ${EXPECTATIONS[name]}` })
    } else if (value === current[name]) {
      result.unchanged.push(name)
    } else {
      result.changed[name] = value
    }
  }
  return result
}
