import { LedgerMeshError } from '../base/errors.js'
import { MASK, isSecretName } from '../base/secrets.js'

/** A bad env key: names the key, what it holds (never a secret's value) and what was expected. */
export class ConfigError extends LedgerMeshError {
  /** `shown`: what to show for the value instead (a key file's path rather than the secret mask). */
  constructor (key: string, value: string | undefined, expected: string, source: string, shown?: string) {
    // A secret's value is not shown even when it is wrong (a mistyped token is nearly the token).
    const secret = value !== undefined && isSecretName(key)
    shown ??= value === undefined ? 'missing' : secret ? `${MASK} (${value.length} characters)` : JSON.stringify(value)
    super('bad_config', `${key}=${shown} in ${source}: expected ${expected}`, { key, value: secret ? MASK : value, expected, source })
  }
}
