import { LedgerMeshError } from '../base/errors.js'
import { type Policy, policyBody, policyType } from '../policies/policy.js'
import { validatePolicy, verifyPolicy } from '../policies/validate.js'
import { parseEntryText } from './entry.js'
import { headFromNote, logOrigin, type SignedHead } from './head.js'
import { trustedMasterKeys } from './ledger-rules.js'
import type { LedgerState } from './state.js'
import { verifyInclusion } from './tlog/proof.js'
import { leafHash } from './tlog/rfc6962.js'

/**
 * Light workers (docs/verifiable-log.md, "Light workers"): the policies a worker needs, as a
 * full node's state names them, and the client's check of an answer that carries them with
 * inclusion proofs. Pure: no I/O.
 */

/** A light worker holds at most this many policies (its assignments dominate: at most its slots). */
export const MAX_LIGHT_POLICIES = 4096

/** The types a light worker always holds whole: the masters' keys and addresses, and their revocations. */
const MASTER_TYPES = ['master_key', 'master'] as const

/**
 * The ids of the live policies worker `worker` needs, in `state`: its declaration, its
 * slave's, its assignments and their profiles, the drains naming it, every master key
 * declaration and master declaration, the revocations of master keys, and the network
 * policy (its witnesses). Bounded by
 * MAX_LIGHT_POLICIES (the excess is left out; the light worker then is refused as incomplete).
 */
export function lightNeeds (state: LedgerState, worker: string): string[] {
  const ids = new Set<string>()
  const add = (policy: Policy | undefined): void => { if (policy !== undefined && ids.size < MAX_LIGHT_POLICIES) ids.add(String(policyBody(policy).id)) }
  const declaration = state.findByName('worker', worker)
  add(declaration)
  const slave = declaration === undefined ? undefined : policyBody(declaration).slave
  if (typeof slave === 'string') add(state.findByName('slave', slave))
  for (const assignment of state.lookup('assignment', 'worker', worker)) {
    const a = policyBody(assignment)
    if (a.worker !== worker || typeof a.profile !== 'string') continue
    add(assignment)
    add(typeof a.profile_id === 'string' ? state.get(a.profile_id) : state.findByName('profile', a.profile))
  }
  for (const drain of state.lookup('drain', 'node', worker)) if (policyBody(drain).node === worker) add(drain)
  for (const type of MASTER_TYPES) for (const policy of state.policiesOfType(type)) add(policy)
  // the network policy names the witnesses (and their quorum) whose cosignatures it checks
  for (const policy of state.policiesOfType('network')) add(policy)
  // the revocations of every key a master declaration names or was signed by: a light worker
  // drops a revoked master key as a replica does (trustedMasterKeys reads them)
  const keys = new Set<string>()
  for (const type of MASTER_TYPES) {
    for (const policy of state.policiesOfType(type)) {
      const body = policyBody(policy)
      for (const k of [body.key, body.public_key]) if (typeof k === 'string') keys.add(k)
    }
  }
  for (const key of keys) for (const revocation of state.lookup('revocation', 'key', key)) if (policyBody(revocation).key === key) add(revocation)
  return [...ids].sort()
}

/** One policy of a light answer: its entry's bytes and the audit path to the answer's checkpoint. */
export interface LightEntry {
  /** the entry's bytes: `<prev_hash>:<seq>:{"op":"put","policy":...}` */
  entry: string
  /** RFC 6962 audit path from the entry's leaf to the checkpoint's root */
  proof: Uint8Array[]
}

/** A light answer the client checked: the checkpoint's head, and each policy with its seq. */
export interface VerifiedLight {
  head: Omit<SignedHead, 'hash'>
  note: string
  policies: Array<{ policy: Policy, seq: number }>
}

const refuse = (message: string): LedgerMeshError => new LedgerMeshError('bad_signature', message)

/**
 * Checks a light answer against what the worker trusts: `rootKey` (the first master's key,
 * which names the network's origin) and the master keys its held policies declare (`held`,
 * with the answer's own `master_key` policies, each author-signed by a key already trusted).
 * Every policy must be a well-formed, author-signed `put` whose entry an inclusion proof
 * places in the tree the checkpoint (signed by a trusted master key) commits to. Throws
 * bad_signature naming the first thing that does not hold; nothing is half-accepted.
 */
export function verifyLightAnswer (answer: { checkpoint: string, entries: readonly LightEntry[] }, trust: { rootKey: string, held: LedgerState }): VerifiedLight {
  const policies: Array<{ policy: Policy, seq: number, bytes: string, proof: readonly Uint8Array[] }> = []
  for (const [i, item] of answer.entries.entries()) {
    const entry = parseEntryText(item.entry)
    if (entry === undefined) throw refuse(`policy ${i} of the answer: its bytes are not a log entry`)
    if (entry.op !== 'put') throw refuse(`entry ${entry.seq}: a delete, not a live policy`)
    try {
      validatePolicy(entry.policy)
      verifyPolicy(entry.policy)
    } catch (err) {
      throw refuse(`entry ${entry.seq}: its policy is not one its author signed (${(err as Error).message})`)
    }
    policies.push({ policy: entry.policy, seq: entry.seq, bytes: item.entry, proof: item.proof })
  }
  const origin = logOrigin(trust.rootKey)
  const keys = [...trustedMasterKeys(trust.held, trust.rootKey, policies.map(p => p.policy).filter(p => MASTER_TYPES.includes(policyType(p) as typeof MASTER_TYPES[number])))]
  let head: Omit<SignedHead, 'hash'>
  try {
    head = headFromNote(answer.checkpoint, origin, keys)
  } catch (err) {
    throw refuse(`the answer's checkpoint is not signed by a master key this worker trusts: ${(err as Error).message}`)
  }
  const root = Buffer.from(head.root, 'hex')
  for (const p of policies) {
    const why = verifyInclusion(leafHash(p.bytes), p.seq - 1, head.seq, p.proof, root)
    if (why !== undefined) throw refuse(`entry ${p.seq} (${policyType(p.policy)} ${String(policyBody(p.policy).id).slice(0, 16)}…) is not in the checkpoint's tree of ${head.seq} entries: ${why}`)
  }
  return { head, note: answer.checkpoint, policies: policies.map(({ policy, seq }) => ({ policy, seq })) }
}
