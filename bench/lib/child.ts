import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Cleanup } from './harness.js'

/**
 * Benchmark helpers in their own processes (a master, a byte-counting proxy, a replica,
 * insert clients), so each side's CPU and memory are its own. They speak JSON lines: the
 * parent writes `{"id", "cmd", ...args}` on the child's stdin, the child answers
 * `{"id", "ok": true, ...result}` or `{"id", "ok": false, "error"}` on stdout. The child's
 * first line (id 0) says it is ready. Closing stdin asks the child to stop.
 */

export const ROOT = join(import.meta.dirname, '..', '..')
/**
 * Where `npm test` put the children below, bundled (scripts/build-tests.mjs builds them,
 * scripts/test.mjs names the directory): run those instead of the TypeScript sources under tsx,
 * which compiles some 500 modules in each child.
 */
const BUNDLED_CHILDREN = process.env.LEDGERMESH_BENCH_CHILDREN
const POLYFILL = join(ROOT, 'scripts', 'with-resolvers.mjs')

export interface Child {
  pid: number
  /** the ready line's fields */
  ready: Record<string, any>
  call: <T = Record<string, any>>(cmd: string, args?: Record<string, unknown>) => Promise<T>
  /** what the child wrote on stderr so far */
  stderr: () => string
}

/**
 * Starts `bench/lib/<file>` (under tsx when it is .ts) with `args` (JSON in argv[2]) and waits for its ready
 * line. The child is stopped at cleanup: stdin closed, then SIGKILL after `stopWithinMs`.
 */
export async function spawnChild (t: Cleanup, file: string, args: object, opts: { nodeArgs?: string[], stopWithinMs?: number, readyWithinMs?: number } = {}): Promise<Child> {
  // .ts files run under tsx, or bundled when npm test built them; plain .mjs files (on dist/) as they are
  const bundled = BUNDLED_CHILDREN !== undefined && file.endsWith('.ts') ? join(BUNDLED_CHILDREN, file.replace(/\.ts$/, '.mjs')) : undefined
  const loader = file.endsWith('.ts') && bundled === undefined ? ['--import', 'tsx'] : []
  const proc: ChildProcess = spawn(process.execPath, [
    ...(opts.nodeArgs ?? []), '--import', POLYFILL, ...loader, bundled ?? join(ROOT, 'bench', 'lib', file), JSON.stringify(args)
  ], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'] })
  let errText = ''
  proc.stderr!.on('data', (chunk: Buffer) => { errText = (errText + chunk.toString()).slice(-20_000) })
  const exited = new Promise<number | null>(resolve => proc.once('exit', code => { resolve(code) }))
  let exitCode: number | null | undefined
  void exited.then(code => { exitCode = code })
  t.teardown(async () => {
    if (exitCode !== undefined) return
    proc.stdin!.end()
    const timer = setTimeout(() => { proc.kill('SIGKILL') }, opts.stopWithinMs ?? 10_000)
    await exited
    clearTimeout(timer)
  })

  const waiting = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void }>()
  let nextId = 1
  const failAll = (why: string): void => {
    for (const w of waiting.values()) w.reject(new Error(`${file}: ${why}\n${errText}`))
    waiting.clear()
  }
  void exited.then(code => { failAll(`exited with ${String(code)}`) })
  const lines = createInterface({ input: proc.stdout! })
  lines.on('line', line => {
    let message: { id: number, ok: boolean, error?: string }
    try { message = JSON.parse(line) } catch { process.stderr.write(`${file}: ${line}\n`); return }
    const w = waiting.get(message.id)
    if (w === undefined) return
    waiting.delete(message.id)
    if (message.ok) w.resolve(message)
    else w.reject(new Error(`${file}: ${message.error ?? 'failed'}`))
  })
  const ready = await new Promise<Record<string, any>>((resolve, reject) => {
    waiting.set(0, { resolve, reject })
    const timer = setTimeout(() => { reject(new Error(`${file} not ready within ${opts.readyWithinMs ?? 120_000} ms\n${errText}`)) }, opts.readyWithinMs ?? 120_000)
    timer.unref()
  })
  return {
    pid: proc.pid!,
    ready,
    stderr: () => errText,
    call: async <T>(cmd: string, callArgs: Record<string, unknown> = {}) => await new Promise<T>((resolve, reject) => {
      const id = nextId++
      waiting.set(id, { resolve, reject })
      proc.stdin!.write(JSON.stringify({ ...callArgs, id, cmd }) + '\n')
    })
  }
}

type Handler = (args: Record<string, any>) => unknown
/**
 * The child's side: announces `ready` (id 0), then answers each command with its handler.
 * Commands run one at a time, in order. When stdin closes, `onClose` runs and the process exits.
 */
export function serveParent (ready: Record<string, unknown>, handlers: Record<string, Handler>, onClose: () => Promise<void> | void): void {
  const send = (message: object): void => { process.stdout.write(JSON.stringify(message) + '\n') }
  send({ id: 0, ok: true, ...ready })
  let queue: Promise<void> = Promise.resolve()
  const lines = createInterface({ input: process.stdin })
  lines.on('line', line => {
    const message = JSON.parse(line) as { id: number, cmd: string }
    queue = queue.then(async () => {
      const handler = handlers[message.cmd]
      try {
        if (handler === undefined) throw new Error(`unknown command ${message.cmd}`)
        const result = await handler(message) ?? {}
        send({ ...result as object, id: message.id, ok: true })
      } catch (err) {
        send({ id: message.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
      }
    })
  })
  lines.on('close', () => {
    void queue.then(async () => { await onClose() }).finally(() => { process.exit(0) })
  })
}

/** The arguments the parent passed (argv[2] as JSON). */
export function childArgs<T> (): T {
  return JSON.parse(process.argv[2] ?? '{}') as T
}
