import { createHash, timingSafeEqual } from 'node:crypto'

/**
 * Secrets: values a node uses (the database password, the REST token, keys) but never shows.
 * Scripts read the real values; whatever is displayed (a command's answer on the REPL or over
 * REST, an error message, a log line) shows `***` instead. Two rules do it:
 *
 * - by name: a variable or env key whose name is a secret's (isSecretName) shows `***`;
 * - by value: the values of secrets (the env file's secret keys, secret-named variables) are
 *   replaced by `***` wherever they appear in displayed text, so a copy under another name or
 *   a connection string holding the password is masked too (SecretMask).
 */

/** What a secret shows as. */
export const MASK = '***'

/**
 * A name is a secret's when it contains, ignoring case, one of: `password`, `passwd`,
 * `passphrase`, `secret`, `token`, `credential`, `private_key`, `api_key`, `network_key`
 * (the last three also written with `-` or nothing for `_`). So DB_PASSWD, REST_TOKEN,
 * JOIN_TOKEN, NETWORK_KEY, SSH_PRIVATE_KEY, MY_API_KEY and the variables `db_passwd` or
 * `rest_token` are secrets. The words are narrow on purpose: a secret's value is masked in
 * every answer and log line, so a name like PRIVATE_IP must not make an address a secret.
 */
const SECRET_NAME = /passw(?:or)?d|passphrase|secret|token|credential|private[_-]?key|api[_-]?key|network[_-]?key/i

export function isSecretName (name: string): boolean {
  return SECRET_NAME.test(name)
}

/**
 * The process environment variables `$NAME` may read besides the env file's keys and the
 * config's values. Everything else in the process environment stays unreadable.
 */
export const PROCESS_ENV_ALLOWED: readonly string[] = ['HOME', 'USER', 'HOSTNAME']

/** `$NAME` from the process environment: only the allow-listed names. */
export function allowedProcessEnv (name: string): string | undefined {
  return PROCESS_ENV_ALLOWED.includes(name) ? process.env[name] : undefined
}

/**
 * Secret values shorter than this are masked by name only: replacing every occurrence of a
 * two-letter password in every answer and log line would garble them all.
 */
export const MIN_MASKED_LENGTH = 4

/** At most this many texts are masked by value (a bound on what runtime assignments may add). */
const MAX_FORMS = 512

/** The secret values a node knows, and the masking of displayed text and values with them. */
export class SecretMask {
  private readonly forms = new Set<string>()
  /** longest first, so a secret that contains another is replaced whole */
  private ordered: string[] = []

  constructor (values: Iterable<unknown> = []) {
    for (const value of values) this.add(value)
  }

  /** Registers a secret value (strings and numbers; the leaves of objects and arrays). */
  add (value: unknown): void {
    if (typeof value === 'number') value = String(value)
    if (typeof value === 'object' && value !== null) {
      for (const item of Object.values(value)) this.add(item)
      return
    }
    if (typeof value !== 'string' || value.length < MIN_MASKED_LENGTH) return
    // As written, inside a JSON string, and URL-encoded (a connection string's password).
    const forms = [value, JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]
    let added = false
    for (const form of forms) {
      if (form.length < MIN_MASKED_LENGTH || this.forms.has(form) || this.forms.size >= MAX_FORMS) continue
      this.forms.add(form)
      added = true
    }
    if (added) this.ordered = [...this.forms].sort((a, b) => b.length - a.length)
  }

  get size (): number { return this.forms.size }

  /** The text with every secret value replaced by `***`. */
  text (text: string): string {
    let masked = text
    for (const form of this.ordered) {
      if (masked.includes(form)) masked = masked.split(form).join(MASK)
    }
    return masked
  }

  /** The value with every string in it masked; the same value when nothing needed masking. */
  value<T> (value: T): T {
    if (this.ordered.length === 0) return value
    return this.maskDeep(value, 0) as T
  }

  private maskDeep (value: unknown, depth: number): unknown {
    if (typeof value === 'string') return this.text(value)
    if (typeof value !== 'object' || value === null || depth > 64) return value
    if (Array.isArray(value)) {
      let copy: unknown[] | undefined
      value.forEach((item, i) => {
        const masked = this.maskDeep(item, depth + 1)
        if (masked !== item) (copy ??= [...value])[i] = masked
      })
      return copy ?? value
    }
    if (Object.getPrototypeOf(value) !== Object.prototype && Object.getPrototypeOf(value) !== null) return value
    let copy: Record<string, unknown> | undefined
    for (const [key, item] of Object.entries(value)) {
      const masked = this.maskDeep(item, depth + 1)
      if (masked !== item) (copy ??= { ...value as Record<string, unknown> })[key] = masked
    }
    return copy ?? value
  }
}

/**
 * Whether a presented secret equals the expected one, in time that does not depend on where
 * they differ: both are hashed first, so their lengths tell nothing either.
 */
export function secretEquals (presented: string | undefined, expected: string): boolean {
  const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest()
  return presented !== undefined && timingSafeEqual(digest(presented), digest(expected))
}
