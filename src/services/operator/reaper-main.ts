/**
 * The reaper: a tiny child of each worker that kills the worker's profile processes when the
 * worker dies, even by kill -9. The worker writes `+<pgid>` / `-<pgid>` lines to the reaper's
 * stdin as it starts and reaps process groups; when that pipe closes (the kernel closes it
 * when the worker exits, however it exits) the reaper SIGKILLs every group still listed.
 * Node has no prctl(PR_SET_PDEATHSIG); a pipe's end-of-file is the portable equivalent.
 */
import { createInterface } from 'node:readline'

const groups = new Set<number>()

// Only end-of-file on stdin ends the reaper: the terminal's Ctrl-C is for the worker.
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => {})

const lines = createInterface({ input: process.stdin })
lines.on('line', line => {
  const pgid = Number(line.slice(1))
  if (!Number.isSafeInteger(pgid) || pgid <= 1) return
  if (line.startsWith('+')) groups.add(pgid)
  else if (line.startsWith('-')) groups.delete(pgid)
})
lines.on('close', () => {
  for (const pgid of groups) {
    try { process.kill(-pgid, 'SIGKILL') } catch { /* already gone */ }
  }
  process.exit(0)
})
