/**
 * The reaper: a tiny child of each worker that kills the worker's profile processes when the
 * worker dies, even by kill -9. The worker writes `+<pgid>` / `-<pgid>` lines to the reaper's
 * stdin as it starts and reaps process groups; when that pipe closes (the kernel closes it
 * when the worker exits, however it exits) the reaper SIGKILLs every group still listed.
 * Node has no prctl(PR_SET_PDEATHSIG); a pipe's end-of-file is the portable equivalent.
 *
 * It also enforces the worker's lease when the worker cannot: the worker writes `@<ms>` (the
 * wall-clock time by which its lease and the profiles' kill grace have run out) after every
 * renewal; if that time passes without a newer one — the worker is frozen (SIGSTOP, a stuck
 * event loop) — the reaper SIGKILLs every group, before the master may move the profiles.
 */
import { createInterface } from 'node:readline'

const groups = new Set<number>()
let deadline: number | undefined

function killAll (): void {
  for (const pgid of groups) {
    try { process.kill(-pgid, 'SIGKILL') } catch { /* already gone */ }
  }
}

setInterval(() => {
  if (deadline !== undefined && Date.now() > deadline && groups.size > 0) {
    process.stderr.write(`ledgermesh reaper: the worker's lease ran out at ${new Date(deadline).toISOString()} without renewal: killing ${groups.size} profile process group(s)\n`)
    killAll()
    groups.clear()
  }
}, 100)

// Only end-of-file on stdin ends the reaper: the terminal's Ctrl-C is for the worker.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {})

const lines = createInterface({ input: process.stdin })
lines.on('line', line => {
  const pgid = Number(line.slice(1))
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return
  if (line.startsWith('@')) { deadline = pgid; return }
  if (line.startsWith('+')) groups.add(pgid)
  else if (line.startsWith('-')) groups.delete(pgid)
})
lines.on('close', () => {
  killAll()
  process.exit(0)
})
