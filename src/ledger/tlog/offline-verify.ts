import { LedgerMeshError } from '../../base/errors.js'
import { canonicalJson } from '../../policies/canonical.js'
import type { Policy } from '../../policies/policy.js'
import { withoutLedgerScope } from '../../policies/prepare.js'
import { parseCheckpoint, type Checkpoint } from './checkpoint.js'
import { type NoteVerifier, cosignerKey, parseNote, parseVkey, verifyNote } from './note.js'
import { verifyInclusion } from './proof.js'
import { leafHash } from './rfc6962.js'

/**
 * `ledgermesh verify`: checks, with nothing but files and the network's master keys, that a
 * checkpoint is signed by a master, and that an entry (and the policy it holds) is in the
 * log that checkpoint commits to. Each failure names what does not hold.
 */
export interface OfflineVerifyInput {
  /** the signed checkpoint (a C2SP note); defaults to the proof's */
  checkpoint?: string
  /** master keys: 64-hex Ed25519 public keys (named by the checkpoint's origin) or vkeys */
  keys: string[]
  /** an inclusion proof as `blockchain prove` and /v1/proof/inclusion answer it */
  proof?: { seq: number, leaf_index: number, tree_size: number, entry: string, proof: string[], checkpoint?: string }
  /** the policy the entry must hold (JSON) */
  policy?: unknown
  /** witnesses' verifier keys (GET /witness's vkey) whose cosignatures the checkpoint must carry */
  witnesses?: string[]
  /** how many of them must have cosigned (default: all given) */
  quorum?: number
}

export interface OfflineVerdict {
  checkpoint: Checkpoint
  /** the key names whose signatures verified */
  signers: string[]
  /** what was verified, one sentence each */
  verified: string[]
}

const fail = (message: string): LedgerMeshError => new LedgerMeshError('bad_signature', message)

function verifiersFor (keys: string[], origin: string): NoteVerifier[] {
  return keys.map(key => /^[0-9a-f]{64}$/i.test(key.trim())
    ? cosignerKey(origin, key.trim().toLowerCase())
    : parseVkey(key))
}

export function verifyOffline (input: OfflineVerifyInput): OfflineVerdict {
  const noteText = input.checkpoint ?? input.proof?.checkpoint
  if (noteText === undefined) throw fail('no checkpoint to verify against: give one, or a proof that carries one')
  if (input.keys.length === 0) throw fail('no master key to verify the checkpoint with')
  const note = parseNote(noteText)
  const checkpoint = parseCheckpoint(note.text)
  let signers: string[]
  try {
    signers = verifyNote(note, verifiersFor(input.keys, checkpoint.origin)).map(v => v.verifier.name)
  } catch (err) {
    throw fail(`the checkpoint (${checkpoint.origin}, size ${checkpoint.size}) is not signed by the master keys given: ${(err as Error).message}`)
  }
  const verified = [`checkpoint ${checkpoint.origin} at tree size ${checkpoint.size} is signed by ${signers.join(', ')}`]
  const witnesses = input.witnesses ?? []
  if (witnesses.length > 0) {
    const needed = input.quorum ?? witnesses.length
    if (!Number.isSafeInteger(needed) || needed < 1 || needed > witnesses.length) throw fail(`a quorum of ${String(input.quorum)} is not from 1 to the ${witnesses.length} witness key(s) given`)
    const vkeys = witnesses.map(w => parseVkey(w))
    let cosigners: string[] = []
    try {
      cosigners = [...new Set(verifyNote(note, vkeys).map(v => v.verifier.name))]
    } catch (err) {
      if (!/signed by none/.test((err as Error).message)) throw fail(`a witness cosignature does not verify: ${(err as Error).message}`)
    }
    if (cosigners.length < needed) throw fail(`the checkpoint is cosigned by ${cosigners.length} of the witnesses given (${cosigners.join(', ') || 'none'}), ${needed} needed`)
    verified.push(`it is cosigned by ${cosigners.length} witness(es): ${cosigners.join(', ')}`)
  }
  const proof = input.proof
  if (proof !== undefined) {
    if (proof.tree_size !== checkpoint.size) throw fail(`the proof is for a tree of ${proof.tree_size} entries, the checkpoint's has ${checkpoint.size}`)
    if (proof.leaf_index !== proof.seq - 1) throw fail(`the proof's leaf index ${proof.leaf_index} is not entry ${proof.seq}'s (${proof.seq - 1})`)
    const entrySeq = /^[0-9a-f]{64}:([0-9]+):/.exec(proof.entry)?.[1]
    if (entrySeq === undefined || Number(entrySeq) !== proof.seq) throw fail(`the entry's bytes do not name entry ${proof.seq}`)
    const hashes = proof.proof.map(h => Buffer.from(h, 'base64'))
    const why = verifyInclusion(leafHash(Buffer.from(proof.entry)), proof.leaf_index, proof.tree_size, hashes, checkpoint.root)
    if (why !== undefined) throw fail(`entry ${proof.seq} is not in the checkpoint's tree: ${why}`)
    verified.push(`entry ${proof.seq} is in that tree (inclusion proof of ${hashes.length} hashes)`)
    if (input.policy !== undefined) {
      // as stored, or as a reader sees it: with the `ledger` field replicas add to every policy
      const candidates = [input.policy]
      try { candidates.push(withoutLedgerScope(input.policy as Policy)) } catch { /* not one policy: compared as given */ }
      const held = candidates.some(p => proof.entry.endsWith(`,"policy":${canonicalJson(p)}}`))
      if (!held) throw fail(`the policy given is not the one entry ${proof.seq} holds`)
      verified.push(`the entry holds the policy given`)
    }
  } else if (input.policy !== undefined) {
    throw fail('a policy is verified with a proof of its entry (blockchain prove where id = <its id>)')
  }
  return { checkpoint, signers, verified }
}
