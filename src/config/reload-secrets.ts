import { checkSecret, ConfigError, fileError, fileValue, FILE_VARIABLES, type Env, type SecretName } from './load-config.js'
import { EXPECTATIONS } from './schema.js'
import { readSecretFile } from './secret-file.js'

export interface SecretReload {
  /** New values of the secrets whose files changed. */
  changed: Partial<Record<SecretName, string>>
  unchanged: SecretName[]
  /** Rejected files, with a reason that never contains the value. */
  rejected: Array<{ variable: string, reason: string }>
}

const MIN_LENGTH: Partial<Record<SecretName, number>> = { TOOLBRIDGE_SIDECAR_SECRET: 32, TOOLBRIDGE_SIDECAR_SECRET_PREVIOUS: 32 }

async function readChecked (name: SecretName, path: string, env: Env): Promise<string> {
  let content: string
  try {
    content = await readSecretFile(path)
  } catch (err) {
    throw fileError(name, path, err)
  }
  const value = fileValue(name, path, content)
  if (value.length < (MIN_LENGTH[name] ?? 1)) throw new ConfigError(`${name}_FILE`, `${name}_FILE: expected ${EXPECTATIONS[name]}`)
  checkSecret(name, value, `${name}_FILE`, env)
  return value
}

/**
 * Re-reads the `..._FILE` secrets (values given directly in the environment
 * cannot change in a running process) without blocking the event loop, and
 * checks them with the start-up rules.
 */
export async function reloadSecrets (env: Env, current: Partial<Record<SecretName, string>>): Promise<SecretReload> {
  const result: SecretReload = { changed: {}, unchanged: [], rejected: [] }
  for (const name of FILE_VARIABLES) {
    const path = env[`${name}_FILE`]
    if (path === undefined || path === '') continue
    let value: string
    try {
      value = await readChecked(name, path, env)
    } catch (err) {
      result.rejected.push({ variable: `${name}_FILE`, reason: (err as ConfigError).message })
      continue
    }
    if (value === current[name]) result.unchanged.push(name)
    else result.changed[name] = value
  }
  return result
}
