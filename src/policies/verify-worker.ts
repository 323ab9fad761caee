/**
 * A signature-verification thread (see verify-pool.ts): for each batch of policies it is
 * sent, it answers the index of the first whose author signature does not verify, or -1, and
 * when asked, every such index.
 */
import { parentPort } from 'node:worker_threads'
import type { Policy } from './policy.js'
import { verifyPolicy } from './validate.js'

parentPort!.on('message', (message: { id: number, policies: Policy[], all?: boolean }) => {
  // all: every failing index (the master's inserts); else the first (a replica's batch)
  const invalid: number[] = []
  for (let i = 0; i < message.policies.length; i++) {
    try { verifyPolicy(message.policies[i]) } catch { invalid.push(i); if (message.all !== true) break }
  }
  parentPort!.postMessage({ id: message.id, bad: invalid[0] ?? -1, invalid })
})
