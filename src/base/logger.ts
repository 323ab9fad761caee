import { pino, type Logger } from 'pino'
import { MASK, SecretMask } from './secrets.js'

export type { Logger }

/** Fields of log objects that are always secrets, wherever they sit (one or two levels down). */
const SECRET_FIELDS = ['DB_PASSWD', 'REST_TOKEN', 'JOIN_TOKEN', 'NETWORK_KEY', 'password', 'passwd', 'restToken', 'token', 'secret', 'privateKey', 'authorization']

/**
 * `object` with every field named in `keys` shown as ***, at the top and one or two levels
 * down (a config's `env`, `db`, a request's headers), in plain objects, arrays and errors;
 * copied only where something is replaced. pino's own `redact` does the same with wildcard
 * paths (`*.KEY`, `*.*.KEY`), but those cost about 20 µs and 70 KB of garbage per log line
 * (measured), which set the p99 of an insert; this walk costs well under a microsecond.
 */
export function redactFields<T> (object: T, keys: ReadonlySet<string>, depth = 2): T {
  if (!isWalkable(object)) return object
  let copy: Record<string, unknown> | unknown[] | undefined
  const source = object as Record<string, unknown>
  for (const key of Object.keys(source)) {
    const value = source[key]
    const shown = keys.has(key) ? MASK : depth > 0 ? redactFields(value, keys, depth - 1) : value
    if (shown === value) continue
    copy ??= copyOf(object)
    ;(copy as Record<string, unknown>)[key] = shown
  }
  return (copy ?? object) as T
}

/** A shallow copy to replace fields in: an array, an error (keeping its class, message and stack), an object. */
function copyOf (value: object): Record<string, unknown> | unknown[] {
  if (Array.isArray(value)) return [...value as unknown[]]
  if (value instanceof Error) {
    const error = Object.create(Object.getPrototypeOf(value) as object) as Record<string, unknown>
    return Object.assign(error, { message: value.message, stack: value.stack }, value)
  }
  return { ...value as Record<string, unknown> }
}

function isWalkable (value: unknown): value is object {
  if (value === null || typeof value !== 'object') return false
  const proto = Object.getPrototypeOf(value) as unknown
  return proto === Object.prototype || proto === null || Array.isArray(value) || value instanceof Error
}

/**
 * pino JSON logs with the node's name and role on every line. Logs go to stderr, so stdout
 * carries only command results (the REPL's answers); when stderr is a terminal the lines are
 * pretty-printed for people (pino-pretty), under a service manager they stay JSON.
 *
 * No line shows a secret: fields named like one (`password`, `DB_PASSWD`, `REST_TOKEN`, the
 * config's own secret keys given in `secretKeys`) are redacted (redactFields), and with `secrets`
 * every secret value left in a line (in a message, an error) is replaced by `***`.
 */
export function createLogger (opts: { name: string, role: string, level: string, pretty?: boolean, file?: string, secrets?: SecretMask, secretKeys?: string[] }): Logger {
  const pretty = opts.file === undefined && (opts.pretty ?? process.stderr.isTTY === true)
  const secrets = opts.secrets
  const secretFields = new Set([...SECRET_FIELDS, ...(opts.secretKeys ?? [])])
  const options = {
    level: opts.level,
    base: { node: opts.name, role: opts.role },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { log: (object: Record<string, unknown>) => redactFields(object, secretFields) },
    ...(secrets === undefined ? {} : { hooks: { streamWrite: (line: string) => secrets.text(line) } })
  }
  if (pretty) {
    return pino({ ...options, transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'pid,hostname' } } })
  }
  // Synchronous writes: a node that exits right after logging still gets its last lines out.
  return pino(options, pino.destination({ dest: opts.file ?? 2, sync: true, mkdir: true }))
}

/** A logger that discards everything, for tests and tools. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
