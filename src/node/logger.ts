import { pino, type Logger } from 'pino'

export type { Logger }

/**
 * pino JSON logs with the node's name and role on every line. Logs go to stderr, so stdout
 * carries only command results (the REPL's answers); when stderr is a terminal the lines are
 * pretty-printed for people (pino-pretty), under a service manager they stay JSON.
 */
export function createLogger (opts: { name: string, role: string, level: string, pretty?: boolean, file?: string }): Logger {
  const pretty = opts.file === undefined && (opts.pretty ?? process.stderr.isTTY === true)
  const options = {
    level: opts.level,
    base: { node: opts.name, role: opts.role },
    timestamp: pino.stdTimeFunctions.isoTime
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
