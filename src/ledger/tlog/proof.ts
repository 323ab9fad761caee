import { HASH_SIZE, nodeHash } from './rfc6962.js'

/**
 * Verification of RFC 9162 proofs (sections 2.1.3.2 and 2.1.4.2), for anyone holding a root:
 * a replica, a light worker, a witness, `ledgermesh verify`. Each answers undefined when the
 * proof holds, or a sentence saying why it does not.
 */

const sameHash = (a: Uint8Array, b: Uint8Array): boolean => a.length === b.length && Buffer.compare(a, b) === 0

/** A proof is at most one hash per level of a 2^64-leaf tree. */
const MAX_PROOF_HASHES = 64

function badHashes (proof: readonly Uint8Array[]): string | undefined {
  if (proof.length > MAX_PROOF_HASHES) return `a proof of ${proof.length} hashes is longer than any tree needs`
  const bad = proof.findIndex(h => h.length !== HASH_SIZE)
  return bad < 0 ? undefined : `proof hash ${bad} is ${proof[bad].length} bytes, not ${HASH_SIZE}`
}

/** Whether `leaf` (a leaf hash) is leaf `index` of the tree of `size` leaves whose root is `root`. */
export function verifyInclusion (leaf: Uint8Array, index: number, size: number, proof: readonly Uint8Array[], root: Uint8Array): string | undefined {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return `leaf ${index} is not in a tree of ${size} leaves`
  const malformed = badHashes(proof)
  if (malformed !== undefined) return malformed
  let fn = index
  let sn = size - 1
  let r: Uint8Array = leaf
  for (const p of proof) {
    if (sn === 0) return `the proof has more hashes than a tree of ${size} leaves needs for leaf ${index}`
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r)
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2) }
    } else {
      r = nodeHash(r, p)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  if (sn !== 0) return `the proof has too few hashes for leaf ${index} of a tree of ${size} leaves`
  return sameHash(r, root) ? undefined : `the proof of leaf ${index} leads to another root than the tree of ${size} leaves has`
}

/** Whether the tree of `first` leaves (root `firstRoot`) is a prefix of the tree of `second` (root `secondRoot`). */
export function verifyConsistency (first: number, second: number, proof: readonly Uint8Array[], firstRoot: Uint8Array, secondRoot: Uint8Array): string | undefined {
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(second) || first < 0 || first > second) return `no consistency proof goes from size ${first} to size ${second}`
  const malformed = badHashes(proof)
  if (malformed !== undefined) return malformed
  if (first === second) {
    if (proof.length > 0) return 'a proof between equal sizes is empty'
    return sameHash(firstRoot, secondRoot) ? undefined : `two different roots for the same size ${first}`
  }
  // every tree extends the empty one
  if (first === 0) return proof.length === 0 ? undefined : 'a proof from the empty tree is empty'
  if (proof.length === 0) return `a proof from size ${first} to ${second} needs hashes`
  const path: Uint8Array[] = (first & (first - 1)) === 0 ? [firstRoot, ...proof] : [...proof]
  let fn = first - 1
  let sn = second - 1
  while (fn % 2 === 1) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2) }
  let fr = path[0]
  let sr = path[0]
  for (const c of path.slice(1)) {
    if (sn === 0) return `the proof has more hashes than sizes ${first} and ${second} need`
    if (fn % 2 === 1 || fn === sn) {
      fr = nodeHash(c, fr)
      sr = nodeHash(c, sr)
      while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2) }
    } else {
      sr = nodeHash(sr, c)
    }
    fn = Math.floor(fn / 2)
    sn = Math.floor(sn / 2)
  }
  if (sn !== 0) return `the proof has too few hashes for sizes ${first} and ${second}`
  if (!sameHash(fr, firstRoot)) return `the proof does not lead to the root of size ${first}: the trees are not consistent`
  if (!sameHash(sr, secondRoot)) return `the proof does not lead to the root of size ${second}: the trees are not consistent`
  return undefined
}
