/**
 * A signature-verification thread (see verify-pool.ts): for each batch of policies it is
 * sent, it answers the index of the first whose author signature does not verify, or -1.
 */
import { parentPort } from 'node:worker_threads'
import type { Policy } from './policy.js'
import { verifyPolicy } from './validate.js'

parentPort!.on('message', (message: { id: number, policies: Policy[] }) => {
  let bad = -1
  for (let i = 0; i < message.policies.length; i++) {
    try { verifyPolicy(message.policies[i]) } catch { bad = i; break }
  }
  parentPort!.postMessage({ id: message.id, bad })
})
