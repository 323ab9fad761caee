import { pino, type Logger } from 'pino'
import { MASK, SecretMask } from './secrets.js'

export type { Logger }

/** Fields of log objects that are always secrets, wherever they sit (one or two levels down). */
const SECRET_FIELDS = ['DB_PASSWD', 'REST_TOKEN', 'JOIN_TOKEN', 'NETWORK_KEY', 'password', 'passwd', 'restToken', 'token', 'secret', 'privateKey', 'authorization']

/** pino redact paths for these field names: `KEY`, `*.KEY` and `*.*.KEY` (a config's `env`, `db`, a request's headers). */
export function redactPaths (keys: Iterable<string>): string[] {
  const paths = new Set<string>()
  for (const key of keys) {
    const field = /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(key) ? key : `[${JSON.stringify(key)}]`
    const after = field.startsWith('[') ? field : `.${field}`
    paths.add(field)
    paths.add(`*${after}`)
    paths.add(`*.*${after}`)
  }
  return [...paths]
}

/**
 * pino JSON logs with the node's name and role on every line. Logs go to stderr, so stdout
 * carries only command results (the REPL's answers); when stderr is a terminal the lines are
 * pretty-printed for people (pino-pretty), under a service manager they stay JSON.
 *
 * No line shows a secret: fields named like one (`password`, `DB_PASSWD`, `REST_TOKEN`, the
 * config's own secret keys given in `secretKeys`) are redacted by pino, and with `secrets`
 * every secret value left in a line (in a message, an error) is replaced by `***`.
 */
export function createLogger (opts: { name: string, role: string, level: string, pretty?: boolean, file?: string, secrets?: SecretMask, secretKeys?: string[] }): Logger {
  const pretty = opts.file === undefined && (opts.pretty ?? process.stderr.isTTY === true)
  const secrets = opts.secrets
  const options = {
    level: opts.level,
    base: { node: opts.name, role: opts.role },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: redactPaths([...SECRET_FIELDS, ...(opts.secretKeys ?? [])]), censor: MASK },
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
