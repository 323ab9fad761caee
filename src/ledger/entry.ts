import * as crypto from 'node:crypto'
import { createHash } from 'node:crypto'
import { canonicalJson, sha256Hex } from '../policies/canonical.js'
import { leafHash } from './tlog/rfc6962.js'
import type { EntryOp, LedgerOp, Policy } from '../policies/policy.js'

export type { EntryOp, LedgerOp }

/**
 * The log: an append-only chain of entries. Each entry's hash covers the previous hash, its
 * seq and its operation, so changing, dropping or reordering any entry breaks every later link.
 *
 *   hash = sha256(prev_hash ":" seq ":" canonical({op, policy}))
 *
 * A `put` carries the signed policy; a `delete` carries a signed tombstone policy
 * `{"delete": {"policy_id": <id of the deleted policy>, ...reserved fields}}`.
 *
 * The text that hash covers is the entry's bytes everywhere else too: the RFC 6962 Merkle
 * tree's leaf is SHA-256(0x00 ‖ those bytes) (see tlog/), and log tiles carry them.
 */
export interface Entry {
  seq: number
  op: EntryOp
  policy: Policy
  prevHash: string
  hash: string
  /**
   * The policy's canonical JSON as it arrived in a sync batch: the chain check hashes this
   * text rather than serializing the policy again. Absent on entries built or read locally.
   */
  policyText?: string
}

/**
 * Merkle leaf hashes computed with an entry's chain hash (building or verifying it), kept
 * beside the entry so the tree does not serialize its policy again; never stored or sent. An
 * entry here had its chain hash computed from its content, so a chain check then checks only
 * its links.
 */
const leaves = new WeakMap<Entry, Buffer>()

/** The prev_hash of entry 1, and the hash of an empty ledger. */
export const GENESIS_HASH = '0'.repeat(64)

export function entryHash (prevHash: string, seq: number, op: EntryOp, policy: Policy): string {
  return entryHashOfText(prevHash, seq, op, canonicalJson(policy))
}

/**
 * The same hash from the policy's canonical text: canonical({op, policy}) is exactly
 * `{"op":"<op>","policy":<canonical policy>}` (RFC 8785 sorts "op" before "policy").
 */
export function entryHashOfText (prevHash: string, seq: number, op: EntryOp, policyText: string): string {
  return sha256Hex(entryText(prevHash, seq, op, policyText))
}

/** The entry's bytes, as text: `<prev_hash>:<seq>:{"op":"<op>","policy":<canonical policy>}`. */
export function entryText (prevHash: string, seq: number, op: EntryOp, policyText: string): string {
  return `${prevHash}:${seq}:{"op":"${op}","policy":${policyText}}`
}

/** SHA-256 of a text, hex: one-shot crypto.hash where Node has it (20.12+), twice as fast as a Hash object here. */
const sha256HexOf = typeof crypto.hash === 'function'
  ? (text: string): string => crypto.hash('sha256', text, 'hex')
  : (text: string): string => createHash('sha256').update(text).digest('hex')

/** The entry's chain hash and Merkle leaf hash, from one serialization of its policy. */
export function entryHashes (prevHash: string, seq: number, op: EntryOp, policyText: string): { hash: string, leaf: Buffer } {
  const text = entryText(prevHash, seq, op, policyText)
  return { hash: sha256HexOf(text), leaf: leafHash(text) }
}

/**
 * An entry from its bytes (a tile bundle's): undefined when they are not an entry's text.
 * The policy's text is kept as it came (policyText), so the chain check hashes these bytes.
 */
export function parseEntryText (text: string): Entry | undefined {
  const match = /^([0-9a-f]{64}):([1-9][0-9]{0,15}):\{"op":"(put|delete)","policy":(\{[\s\S]*\})\}$/.exec(text)
  if (match === null || !Number.isSafeInteger(Number(match[2]))) return undefined
  let policy: unknown
  try { policy = JSON.parse(match[4]) } catch { return undefined }
  if (typeof policy !== 'object' || policy === null || Array.isArray(policy)) return undefined
  const entry: Entry = { seq: Number(match[2]), op: match[3] as EntryOp, policy: policy as Policy, prevHash: match[1], hash: sha256Hex(text), policyText: match[4] }
  leaves.set(entry, leafHash(text))
  return entry
}

/** An entry's bytes (what tiles and proofs carry), from the policy text it came with when it has one. */
export function entryBytes (entry: Entry): string {
  return entryText(entry.prevHash, entry.seq, entry.op, entry.policyText ?? canonicalJson(entry.policy))
}

/** An entry's Merkle leaf hash (computed from its content when it does not carry one). */
export function entryLeafHash (entry: Entry): Buffer {
  return leaves.get(entry) ?? leafHash(entryBytes(entry))
}

/** Gives ops their places after (seq, hash): the master's side of the chain. */
export function chainEntries (after: { seq: number, hash: string }, ops: LedgerOp[]): Entry[] {
  const entries: Entry[] = []
  let prevHash = after.hash
  let seq = after.seq
  for (const { op, policy } of ops) {
    seq += 1
    const { hash, leaf } = entryHashes(prevHash, seq, op, canonicalJson(policy))
    const entry: Entry = { seq, op, policy, prevHash, hash }
    leaves.set(entry, leaf)
    entries.push(entry)
    prevHash = hash
  }
  return entries
}

/**
 * Checks that entries continue the chain after (seq, hash) link by link. Returns undefined when
 * they do, or a sentence naming the first broken entry. Each entry verified keeps its Merkle
 * leaf hash (entryLeafHash), computed from the same bytes.
 */
export function verifyChainLinks (after: { seq: number, hash: string }, entries: readonly Entry[]): string | undefined {
  let prevHash = after.hash
  let seq = after.seq
  for (const entry of entries) {
    if (entry.seq !== seq + 1) return `entry seq ${entry.seq} does not follow seq ${seq}`
    if (entry.prevHash !== prevHash) return `entry ${entry.seq} links to prev_hash ${entry.prevHash.slice(0, 12)}…, expected ${prevHash.slice(0, 12)}…`
    if (!leaves.has(entry)) {
      const broken = hashEntry(entry)
      if (broken !== undefined) return broken
    }
    prevHash = entry.hash
    seq = entry.seq
  }
  return undefined
}

/**
 * Checks the hashes of entries held a while (a catch-up run waiting for the signed head that
 * covers it) against their content now, and lets go of the policy text they came with: about
 * 40% of a held entry's memory. The chain check later checks only their links. Returns a
 * sentence naming the first entry whose hash does not match, or undefined.
 */
export function hashAndReleaseText (entries: readonly Entry[], from = 0): string | undefined {
  for (let i = from; i < entries.length; i++) {
    const entry = entries[i]
    if (!leaves.has(entry)) {
      const broken = hashEntry(entry)
      if (broken !== undefined) return broken
    }
    entry.policyText = undefined // not `delete`: the object keeps its shape
  }
  return undefined
}

/** Computes an entry's chain and leaf hashes from its content; a sentence when the chain hash is not the one it carries. */
function hashEntry (entry: Entry): string | undefined {
  const { hash, leaf } = entryHashes(entry.prevHash, entry.seq, entry.op, entry.policyText ?? canonicalJson(entry.policy))
  if (hash !== entry.hash) return `entry ${entry.seq} hash does not match its content`
  leaves.set(entry, leaf)
  return undefined
}

/**
 * The entries of a batch that come after `current`, when the batch overlaps what a ledger
 * already holds (another apply got there first while the batch waited): those up to
 * current.seq are dropped when the one at current.seq carries current's hash (the chain
 * vouches for the ones before it). The batch comes back whole when it starts after current or
 * disagrees with it (the chain check then says so); undefined when it lies wholly at or
 * before current (the caller compares its last entry with its own log).
 */
export function afterHeld (current: { seq: number, hash: string }, entries: Entry[]): Entry[] | undefined {
  if (entries.length === 0 || entries[0].seq > current.seq) return entries
  if (entries[entries.length - 1].seq < current.seq) return undefined
  const index = entries.findIndex(entry => entry.seq === current.seq)
  return index >= 0 && entries[index].hash === current.hash ? entries.slice(index + 1) : entries
}
