/**
 * A signature-verification thread (see verify-pool.ts): for each batch of policies it is
 * sent, it answers the indices of those whose id or author signature does not verify: every
 * one when asked for all (the master's inserts), else the first (a replica's batch).
 */
import { parentPort } from 'node:worker_threads'
import type { Policy } from './policy.js'
import { invalidPolicies } from './validate.js'

parentPort!.on('message', (message: { id: number, policies: Policy[], all: boolean }) => {
  parentPort!.postMessage({ id: message.id, invalid: invalidPolicies(message.policies, message.all) })
})
