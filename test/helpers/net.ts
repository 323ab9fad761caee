import { randomInt } from 'node:crypto'
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/*
 * Ports for test nodes, safe across processes. tap runs two test files at once, and other
 * checkouts run their tests on the same machine: a port that was merely free a moment ago
 * (listen on port 0, close) can be handed to two processes before either binds it, and an
 * outbound connection can take it as its source port meanwhile. So a port is
 *
 * - drawn at random from 20000-32767 (LEDGERMESH_TEST_PORTS=<from>-<to> overrides), below
 *   the kernel's ephemeral range (Linux 32768-60999, others 49152-65535): neither a
 *   `listen(0)` elsewhere (libp2p hosts and proxies on port 0) nor an outbound connection's
 *   source port can take it between freePort and the bind;
 * - reserved by creating the file `<os.tmpdir()>/ledgermesh-test-ports/<port>` exclusively
 *   (O_CREAT|O_EXCL, atomic), holding this process's pid: of two processes, only one can
 *   create it, so only one is handed the port;
 * - checked free by listening on 127.0.0.1:<port> (the nodes' default INTERNAL_IP) and closing.
 *
 * The reservation lasts as long as the process (a restarted node reuses its ports; the same
 * process never gets the same port twice) and its files are removed when it exits. A file
 * left by a process that died without exiting (SIGKILL) names a pid that no longer runs; it
 * is reclaimed under a second exclusive file, `<port>.reclaim`, so two processes cannot both
 * reclaim it (a process dying in the instant it holds `<port>.reclaim` leaves that one port
 * unused, no more). This assumes the processes sharing the directory share one pid namespace.
 */
const PORT_RANGE = portRange(process.env.LEDGERMESH_TEST_PORTS ?? '20000-32767')
const LOCK_DIR = join(tmpdir(), 'ledgermesh-test-ports')
const MAX_DRAWS = 500
const held = new Set<string>()
let releaseAtExit = false

function portRange (text: string): { from: number, to: number } {
  const [from, to] = text.split('-').map(Number)
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 1024 || to > 65535 || from > to) {
    throw new Error(`LEDGERMESH_TEST_PORTS=${text}: expected <from>-<to>, ports from 1024 to 65535`)
  }
  return { from, to }
}

function errno (err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code
}

/** Creates `file` holding this pid, unless it exists. */
function createExclusive (file: string): boolean {
  try {
    writeFileSync(file, `${process.pid}\n`, { flag: 'wx' })
    return true
  } catch (err) {
    if (errno(err) === 'EEXIST') return false
    throw err
  }
}

/** The pid in `file`; undefined when it is gone, or still empty (being written). */
function ownerOf (file: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(file, 'utf8'), 10)
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

/** Whether `file` names a process that no longer runs (an unreadable or empty file does not). */
function ownerGone (file: string): boolean {
  const pid = ownerOf(file)
  if (pid === undefined || pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return false
  } catch (err) {
    return errno(err) === 'ESRCH'
  }
}

/** Reserves `port` for this process; false when another process holds it. */
function reserve (port: number): boolean {
  const lock = join(LOCK_DIR, String(port))
  if (!createExclusive(lock)) {
    if (!ownerGone(lock)) return false
    const reclaim = `${lock}.reclaim`
    if (!createExclusive(reclaim)) return false
    try {
      // only a holder of <port>.reclaim removes <port> it does not own: check again under it
      if (!ownerGone(lock)) return false
      rmSync(lock, { force: true })
      if (!createExclusive(lock)) return false
    } catch (err) {
      if (errno(err) === 'EPERM' || errno(err) === 'EACCES') return false // another user's file
      throw err
    } finally {
      rmSync(reclaim, { force: true })
    }
  }
  if (!releaseAtExit) {
    releaseAtExit = true
    process.once('exit', () => {
      for (const file of held) if (ownerOf(file) === process.pid) rmSync(file, { force: true })
    })
  }
  held.add(lock)
  return true
}

function release (port: number): void {
  const lock = join(LOCK_DIR, String(port))
  held.delete(lock)
  rmSync(lock, { force: true })
}

async function canListen (port: number): Promise<boolean> {
  return await new Promise(resolve => {
    const server = createServer()
    server.unref()
    server.once('error', () => { resolve(false) })
    server.listen(port, '127.0.0.1', () => { server.close(() => { resolve(true) }) })
  })
}

/**
 * A random TCP port, free on 127.0.0.1, that no other process using these helpers is handed
 * while this process runs (see above).
 */
export async function freePort (): Promise<number> {
  return await freePortBlock([0])
}

/**
 * A random base port such that every `base + offset` is free on 127.0.0.1 and reserved for
 * this process as freePort's are (for `ledgermesh demo --port <base>`, which uses fixed offsets).
 */
export async function freePortBlock (offsets: number[]): Promise<number> {
  try {
    mkdirSync(LOCK_DIR, { mode: 0o1777 })
    chmodSync(LOCK_DIR, 0o1777) // past the umask: every user's tests share it
  } catch (err) {
    if (errno(err) !== 'EEXIST') throw err
  }
  const span = Math.max(0, ...offsets)
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const base = randomInt(PORT_RANGE.from, PORT_RANGE.to - span + 1)
    const taken: number[] = []
    let all = true
    for (const offset of offsets) {
      const port = base + offset
      if (!reserve(port)) { all = false; break }
      taken.push(port)
      // something outside the tests listens there
      if (!await canListen(port)) { all = false; break }
    }
    if (all) return base
    for (const port of taken) release(port)
  }
  throw new Error(`no free port${offsets.length > 1 ? ' block' : ''} in ${PORT_RANGE.from}-${PORT_RANGE.to} after ${MAX_DRAWS} draws (reservations in ${LOCK_DIR})`)
}

/** Polls `check` every `everyMs` until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function waitFor<T> (what: string, check: () => Promise<T | undefined> | T | undefined, opts: { timeoutMs?: number, everyMs?: number } = {}): Promise<T> {
  const deadline = Date.now() + (opts.timeoutMs ?? 20_000)
  let lastError: unknown
  while (Date.now() < deadline) {
    try {
      const value = await check()
      if (value !== undefined) return value
    } catch (err) {
      lastError = err
    }
    await new Promise(resolve => setTimeout(resolve, opts.everyMs ?? 100))
  }
  throw new Error(`timed out waiting for ${what}${lastError !== undefined ? `: ${String(lastError)}` : ''}`)
}
