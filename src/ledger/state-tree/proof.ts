import { z } from 'zod'
import { LedgerMeshError } from '../../base/errors.js'
import { PATH_BITS, STATE_HASH_SIZE, check32, commonPrefixBits, innerNodeHash, isPlaceholder, leafNodeHash, pathBit } from './hashing.js'

/**
 * A state tree proof, celestiaorg/smt's SparseMerkleProof (proofs.go) without SiblingData
 * (updatable proofs): the path's side nodes and, for some absences, the leaf found instead.
 *
 * - `sideNodes` lists the siblings of the path's nodes from the deepest up: sideNodes[0] is
 *   the sibling of the node the proof starts from, at depth n = sideNodes.length, and
 *   sideNodes[n - 1] a child of the root. Empty siblings are PLACEHOLDER.
 * - Present: the node at depth n is the leaf SHA-256(0x00 ‖ path ‖ valueHash).
 * - Absent: the node at depth n is empty (no `otherLeaf`), or is `otherLeaf`, a leaf with
 *   another path that shares the first n bits with this one (a subtree with one leaf is it).
 *
 * Verifying folds the node up with the path's bits (bit n - 1 - i places sideNodes[i] left
 * when it is 1) and compares the result with the root, as celestia's VerifyProof does, with
 * two checks more: `otherLeaf` must share the path's first n bits, i.e. sit where the path
 * leads (an honest root makes this redundant; a verifier checks it anyway), and a proof of
 * presence must not carry an `otherLeaf` (celestia ignores it there). celestia carries the
 * other leaf as its node's bytes, 0x00 ‖ path ‖ value hash; here as its two hashes.
 */
export interface StateProof {
  readonly sideNodes: readonly Buffer[]
  readonly otherLeaf?: { readonly path: Buffer, readonly valueHash: Buffer }
}

/**
 * Why the proof does not show `path` holding `valueHash` (or nothing, when undefined) in the
 * tree whose root is `root`; undefined when it does. Throws only on malformed arguments of
 * the caller's own (a root, path or value hash that is not 32 bytes).
 */
export function checkStateProof (root: Uint8Array, path: Uint8Array, valueHash: Uint8Array | undefined, proof: StateProof): string | undefined {
  check32(root, 'a state root')
  check32(path, 'a state path')
  if (valueHash !== undefined) check32(valueHash, 'a value hash')
  if (typeof proof !== 'object' || proof === null) return 'the proof is not an object'
  const { sideNodes, otherLeaf } = proof
  if (!Array.isArray(sideNodes)) return 'the proof has no side nodes list'
  if (sideNodes.length > PATH_BITS) return `a proof of ${sideNodes.length} side nodes is deeper than the tree's ${PATH_BITS} levels`
  const bad = sideNodes.findIndex(node => !(node instanceof Uint8Array) || node.length !== STATE_HASH_SIZE)
  if (bad >= 0) return `side node ${bad} is not ${STATE_HASH_SIZE} bytes`
  const depth = sideNodes.length
  let hash: Buffer
  if (valueHash !== undefined) {
    if (otherLeaf !== undefined) return 'a proof of presence names another leaf'
    hash = leafNodeHash(path, valueHash)
  } else if (otherLeaf === undefined) {
    hash = Buffer.alloc(STATE_HASH_SIZE)
  } else {
    if (!(otherLeaf.path instanceof Uint8Array) || otherLeaf.path.length !== STATE_HASH_SIZE || !(otherLeaf.valueHash instanceof Uint8Array) || otherLeaf.valueHash.length !== STATE_HASH_SIZE) return `the other leaf's path and value hash must be ${STATE_HASH_SIZE} bytes each`
    const shared = commonPrefixBits(otherLeaf.path, path)
    if (shared === PATH_BITS) return 'the proof of absence shows a leaf at this very path'
    if (shared < depth) return `the other leaf parts from the path at bit ${shared}, above depth ${depth} where the proof puts it`
    hash = leafNodeHash(otherLeaf.path, otherLeaf.valueHash)
  }
  for (let i = 0; i < depth; i++) {
    hash = pathBit(path, depth - 1 - i) === 1 ? innerNodeHash(sideNodes[i], hash) : innerNodeHash(hash, sideNodes[i])
  }
  if (hash.equals(root)) return undefined
  return valueHash === undefined ? 'the proof of absence leads to another root' : 'the proof leads to another root: the path holds another value hash, or nothing'
}

/** Whether the proof shows `path` holding `valueHash` (undefined: holding nothing) under `root`. */
export function verifyStateProof (root: Uint8Array, path: Uint8Array, valueHash: Uint8Array | undefined, proof: StateProof): boolean {
  return checkStateProof(root, path, valueHash, proof) === undefined
}

/**
 * A proof as JSON, celestia's SparseCompactMerkleProof with base64 strings:
 *   { "num_side_nodes": n, "bit_mask": base64, "side_nodes": [base64...],
 *     "other_leaf": { "path": base64, "value_hash": base64 } (absence at another leaf only) }
 * bit_mask has ⌈n/8⌉ bytes; bit i, from the most significant bit of byte 0, is set when side
 * node i is the placeholder, which side_nodes then leaves out (the others are in order).
 * Stricter than celestia's DecompactProof, so that one proof has one encoding: the mask's bits
 * past n are zero, and side_nodes lists no placeholder.
 */
export interface StateProofJson {
  num_side_nodes: number
  bit_mask: string
  side_nodes: string[]
  other_leaf?: { path: string, value_hash: string }
}

const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64')
/** canonical base64 only: one proof, one encoding */
const base64 = z.string().max(64).refine(s => Buffer.from(s, 'base64').toString('base64') === s, 'is not canonical base64')
const hash32 = base64.refine(s => Buffer.from(s, 'base64').length === STATE_HASH_SIZE, `is not ${STATE_HASH_SIZE} bytes in base64`)
const proofSchema = z.strictObject({
  num_side_nodes: z.number().int().min(0).max(PATH_BITS),
  bit_mask: base64,
  side_nodes: z.array(hash32).max(PATH_BITS),
  other_leaf: z.strictObject({ path: hash32, value_hash: hash32 }).optional()
})

export function encodeStateProof (proof: StateProof): StateProofJson {
  const n = proof.sideNodes.length
  const mask = Buffer.alloc(Math.ceil(n / 8))
  const sideNodes: string[] = []
  proof.sideNodes.forEach((node, i) => {
    if (isPlaceholder(node)) mask[i >>> 3] |= 0x80 >>> (i & 7)
    else sideNodes.push(b64(node))
  })
  const json: StateProofJson = { num_side_nodes: n, bit_mask: b64(mask), side_nodes: sideNodes }
  if (proof.otherLeaf !== undefined) json.other_leaf = { path: b64(proof.otherLeaf.path), value_hash: b64(proof.otherLeaf.valueHash) }
  return json
}

const bad = (message: string): LedgerMeshError => new LedgerMeshError('bad_message', `state proof: ${message}`)

/** A proof from its JSON form (from a peer: anything); a LedgerMeshError ('bad_message') names what is wrong. */
export function decodeStateProof (json: unknown): StateProof {
  const parsed = proofSchema.safeParse(json)
  if (!parsed.success) {
    const issue = parsed.error.issues[0]
    throw bad(`${issue.path.length > 0 ? issue.path.join('.') : 'the proof'}: ${issue.message}`)
  }
  const { num_side_nodes: n, bit_mask: bitMask, side_nodes: listed, other_leaf: other } = parsed.data
  const mask = Buffer.from(bitMask, 'base64')
  if (mask.length !== Math.ceil(n / 8)) throw bad(`bit_mask is ${mask.length} bytes, not the ${Math.ceil(n / 8)} that ${n} side nodes need`)
  const sideNodes: Buffer[] = []
  let next = 0
  for (let i = 0; i < mask.length * 8; i++) {
    const placeholder = (mask[i >>> 3] & (0x80 >>> (i & 7))) !== 0
    if (i >= n) {
      if (placeholder) throw bad(`bit_mask sets bit ${i}, past the ${n} side nodes`)
    } else if (placeholder) {
      sideNodes.push(Buffer.alloc(STATE_HASH_SIZE))
    } else {
      if (next >= listed.length) throw bad(`side_nodes has ${listed.length} hashes, fewer than bit_mask leaves to it`)
      const node = Buffer.from(listed[next++], 'base64')
      if (isPlaceholder(node)) throw bad(`side node ${i} is the placeholder, which bit_mask marks instead`)
      sideNodes.push(node)
    }
  }
  if (next !== listed.length) throw bad(`side_nodes has ${listed.length} hashes, more than the ${next} bit_mask leaves to it`)
  if (other === undefined) return { sideNodes }
  return { sideNodes, otherLeaf: { path: Buffer.from(other.path, 'base64'), valueHash: Buffer.from(other.value_hash, 'base64') } }
}
