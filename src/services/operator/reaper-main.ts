/**
 * The reaper: a tiny child of each worker that kills the worker's profile processes when the
 * worker dies, even by kill -9. The worker writes `+<pgid>` / `-<pgid>` lines to the reaper's
 * stdin as it starts and reaps process groups; when that pipe closes (the kernel closes it
 * when the worker exits, however it exits) the reaper SIGKILLs every group still listed.
 * Node has no prctl(PR_SET_PDEATHSIG); a pipe's end-of-file is the portable equivalent.
 *
 * It also enforces the worker's lease when the worker cannot: the worker writes `~<ms>` (how
 * long from now until its lease and the profiles' kill grace have run out) after every
 * renewal; if that long passes without a newer one — the worker is frozen (SIGSTOP, a stuck
 * event loop) — the reaper SIGKILLs every group, before the master may move the profiles.
 * The deadline is kept on this process's monotonic clock: a wall-clock step must neither kill
 * a worker's profiles early nor let a frozen worker's profiles outlive its lease.
 */
import { createInterface } from 'node:readline'

const groups = new Set<number>()
/** performance.now() after which the worker's lease is over */
let deadline: number | undefined

function killAll (): void {
  for (const pgid of groups) {
    try { process.kill(-pgid, 'SIGKILL') } catch { /* already gone */ }
  }
}

setInterval(() => {
  if (deadline !== undefined && performance.now() > deadline && groups.size > 0) {
    process.stderr.write(`ledgermesh reaper: the worker's lease ran out ${Math.round(performance.now() - deadline)} ms ago without renewal: killing ${groups.size} profile process group(s)\n`)
    killAll()
    groups.clear()
  }
}, 100)

// Only end-of-file on stdin ends the reaper: the terminal's Ctrl-C is for the worker.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {})

const lines = createInterface({ input: process.stdin })
lines.on('line', line => {
  const value = Number(line.slice(1))
  if (line.startsWith('~')) {
    if (Number.isSafeInteger(value) && value >= 0) deadline = performance.now() + value
    return
  }
  const pgid = value
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return
  if (line.startsWith('+')) groups.add(pgid)
  else if (line.startsWith('-')) groups.delete(pgid)
})
lines.on('close', () => {
  killAll()
  process.exit(0)
})
