import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { type Policy, type PolicyBody, policyBody, policyId } from '../policies/policy.js'
import { type Entry, type EntryOp, type LedgerOp, chainEntries } from './entry.js'
import type { Head, SignedHead } from './head.js'
import type { SignCommit } from './store.js'

export type { SignCommit }

/**
 * Checks and conversions both LedgerStore implementations share, so LevelDB and PostgreSQL
 * reject the same inputs with the same codes and messages.
 */

/** The policy id of each op or entry, in order. A policy without an id is a bad policy. */
export function opIds (ops: ReadonlyArray<{ policy: Policy }>): string[] {
  return ops.map(({ policy }) => {
    try {
      return policyId(policy)
    } catch (err) {
      throw new LedgerMeshError('bad_policy', `cannot store a policy without an id: ${errorMessage(err)}`)
    }
  })
}

/** The ids of a commit batch; the same id twice in one batch is a duplicate. */
export function uniqueIds (ops: readonly LedgerOp[]): string[] {
  const ids = opIds(ops)
  const seen = new Set<string>()
  for (const id of ids) {
    if (seen.has(id)) throw new LedgerMeshError('duplicate_id', `policy ${id} is twice in one commit batch`, { id })
    seen.add(id)
  }
  return ids
}

/**
 * chainEntries for commit(), plus the head signed by the caller's callback. A policy with no
 * canonical JSON form (e.g. a lone UTF-16 surrogate) cannot be hashed: that is a bad policy,
 * not a store failure. A callback that throws something other than a LedgerMeshError is a bug.
 */
export function chainAndSign (head: Head, ops: LedgerOp[], signHead: SignCommit): { entries: Entry[], signed: SignedHead } {
  let entries: Entry[]
  try {
    entries = chainEntries(head, ops)
  } catch (err) {
    throw new LedgerMeshError('bad_policy', `cannot hash a policy of this batch: ${errorMessage(err)}`)
  }
  const last = entries[entries.length - 1]
  try {
    return { entries, signed: signHead({ seq: last.seq, hash: last.hash }, entries) }
  } catch (err) {
    if (err instanceof LedgerMeshError) throw err
    throw new LedgerMeshError('internal', `signing the head at seq ${last.seq} failed: ${errorMessage(err)}`)
  }
}

/**
 * commit()'s precondition when the caller names the head it authorized its ops against:
 * another writer that committed in between (a takeover racing this master's commit) makes the
 * ops' checks stale, so nothing is written and the caller reloads and checks them again.
 */
export function checkExpectedHead (stored: Head, expected: Head | undefined, location: string): void {
  if (expected === undefined || (stored.seq === expected.seq && stored.hash === expected.hash)) return
  throw new LedgerMeshError('conflict', `store ${location} moved to seq ${stored.seq} since this master's head ${expected.seq}: the batch is checked again against the new state`, { headMoved: true, seq: stored.seq })
}

/** Whether a commit was refused because the store's head moved past the one its ops were checked against. */
export function isHeadMoved (err: unknown): boolean {
  return err instanceof LedgerMeshError && err.code === 'conflict' && err.details.headMoved === true
}

/** The id a delete op removes: its tombstone body's `policy_id`. */
export function tombstoneTarget (policy: Policy): string | undefined {
  let body: PolicyBody
  try {
    body = policyBody(policy)
  } catch {
    return undefined
  }
  return typeof body.policy_id === 'string' ? body.policy_id : undefined
}

/**
 * append()'s precondition: the entries continue the stored head link by link (seq + 1 and
 * prev_hash; the caller has verified the hashes) and end exactly at the signed head.
 */
export function checkAppendable (stored: Head, entries: readonly Entry[], head: SignedHead, location: string): void {
  let previous = stored
  for (const entry of entries) {
    if (entry.seq !== previous.seq + 1 || entry.prevHash !== previous.hash) {
      const expected = `seq ${previous.seq + 1} after hash ${previous.hash.slice(0, 12)}…`
      throw new LedgerMeshError('conflict', `store ${location} cannot append entry seq ${entry.seq} (prev_hash ${entry.prevHash.slice(0, 12)}…): expected ${expected}`, {
        seq: entry.seq, expectedSeq: previous.seq + 1
      })
    }
    previous = { seq: entry.seq, hash: entry.hash }
  }
  if (head.seq !== previous.seq || head.hash !== previous.hash) {
    throw new LedgerMeshError('conflict', `store ${location}: the signed head (seq ${head.seq}) does not match the end of the appended entries (seq ${previous.seq})`, {
      seq: head.seq, expectedSeq: previous.seq
    })
  }
}

/** Parses stored JSON; text that does not parse means the store's content is damaged. */
export function decodeJson<T> (text: string, what: string): T {
  try {
    return JSON.parse(text) as T
  } catch (err) {
    throw new LedgerMeshError('chain_broken', `${what} is not valid JSON: ${errorMessage(err)}`)
  }
}

const HASH_PATTERN = /^[0-9a-f]{64}$/

function entryProblem (fields: { seq: unknown, op: unknown, policy: unknown, prevHash: unknown, hash: unknown }): string | undefined {
  const { seq, op, policy, prevHash, hash } = fields
  if (!Number.isSafeInteger(seq) || (seq as number) < 1) return 'its seq is not a positive integer'
  if (op !== 'put' && op !== 'delete') return 'its op is neither put nor delete'
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) return 'its policy is not an object'
  if (typeof prevHash !== 'string' || !HASH_PATTERN.test(prevHash)) return 'its prev_hash is not a sha256 hex'
  if (typeof hash !== 'string' || !HASH_PATTERN.test(hash)) return 'its hash is not a sha256 hex'
  return undefined
}

/** Rebuilds an Entry from stored fields, refusing anything that is not one. */
export function toEntry (fields: { seq: unknown, op: unknown, policy: unknown, prevHash: unknown, hash: unknown }, what: string): Entry {
  const problem = entryProblem(fields)
  if (problem !== undefined) throw new LedgerMeshError('chain_broken', `${what} does not decode as a ledger entry: ${problem}`)
  const { seq, op, policy, prevHash, hash } = fields
  return { seq: seq as number, op: op as EntryOp, policy: policy as Policy, prevHash: prevHash as string, hash: hash as string }
}

/** An Entry stored as JSON text (the LevelDB value). */
export function decodeEntry (text: string, what: string): Entry {
  const value = decodeJson<Record<string, unknown> | null>(text, what)
  if (typeof value !== 'object' || value === null) {
    throw new LedgerMeshError('chain_broken', `${what} does not decode as a ledger entry: not a JSON object`)
  }
  return toEntry({ seq: value.seq, op: value.op, policy: value.policy, prevHash: value.prevHash, hash: value.hash }, what)
}
