import * as crypto from 'node:crypto'
import { createHash } from 'node:crypto'

/**
 * RFC 6962 (and RFC 9162, section 2.1) Merkle tree hashing: a leaf's hash covers 0x00 and the
 * entry's bytes, an interior node's 0x01 and its two children, so no leaf can pass for a node.
 * Every hash is 32 bytes of SHA-256.
 */
export const HASH_SIZE = 32

const LEAF_PREFIX = Buffer.from([0x00])
const NODE_PREFIX = Buffer.from([0x01])

/**
 * One-shot SHA-256 (crypto.hash, Node 20.12 and later): about twice as fast as a Hash object
 * for inputs this small, which is most of what a tree append costs.
 */
const sha256 = typeof crypto.hash === 'function' ? (data: string | Uint8Array): Buffer => crypto.hash('sha256', data, 'buffer') : undefined
/** a node's input, 0x01 ‖ left ‖ right, assembled in place (hashing is synchronous) */
const nodeInput = Buffer.alloc(1 + 2 * HASH_SIZE, 0x01)

/** The leaf hash of an entry's bytes (text is hashed as its UTF-8 bytes: U+0000 is the 0x00 byte). */
export function leafHash (entry: Uint8Array | string): Buffer {
  if (sha256 !== undefined && typeof entry === 'string') return sha256('\u0000' + entry)
  return createHash('sha256').update(LEAF_PREFIX).update(entry).digest()
}

export function nodeHash (left: Uint8Array, right: Uint8Array): Buffer {
  if (sha256 === undefined || left.length !== HASH_SIZE || right.length !== HASH_SIZE) {
    return createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest()
  }
  nodeInput.set(left, 1)
  nodeInput.set(right, 1 + HASH_SIZE)
  return sha256(nodeInput)
}

/** The root of the empty tree: SHA-256 of nothing. */
export const EMPTY_ROOT: Buffer = createHash('sha256').digest()

/** The largest power of two smaller than n (n > 1): where RFC 6962 splits a tree of n leaves. */
export function splitPoint (n: number): number {
  let k = 1
  while (k * 2 < n) k *= 2
  return k
}
