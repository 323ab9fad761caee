import * as crypto from 'node:crypto'
import { createHash } from 'node:crypto'

/**
 * The state tree's hashing, celestiaorg/smt's format (treehasher.go) with SHA-256:
 * - a key's path is SHA-256 of the policy id's UTF-8 bytes, 256 bits read from the most
 *   significant bit of byte 0; a 0 bit goes left, a 1 bit right;
 * - a leaf node is SHA-256(0x00 ‖ path ‖ valueHash), an inner node SHA-256(0x01 ‖ left ‖ right),
 *   so no leaf passes for an inner node (their inputs differ in length and first byte);
 * - an empty subtree is the placeholder, 32 zero bytes (no SHA-256 output is known to be zero).
 *
 * Checked against celestia's code (smt.go, treehasher.go, proofs.go): the same roots and side
 * nodes, a subtree of one leaf being that leaf, as its update and delete build them. Where
 * this differs:
 * - celestia hashes the value it is given (leaf = SHA-256(0x00 ‖ path ‖ SHA-256(value)));
 *   here the caller gives the value hash. The ledger's is the RFC 6962 leaf hash of the log
 *   entry that put the policy, SHA-256(0x00 ‖ entry bytes): celestia's with value = 0x00 ‖ entry.
 * - celestia takes an empty value as a delete; here every leaf has a 32-byte value hash and
 *   deleting is its own call.
 * - the empty tree's root is 32 zero bytes, as celestia's code computes, not SHA-256 of the
 *   empty string as the celestia-specs text says (celestiaorg/smt issue 67).
 */
export const STATE_HASH_SIZE = 32
/** bits in a path: the depth of the deepest possible node */
export const PATH_BITS = 256

/**
 * The hash of an empty subtree, and the root of the empty tree. Shared: never write into it
 * (the tree and the verifiers hash with a copy of their own, so a caller that does cannot
 * change what they compute).
 */
export const PLACEHOLDER: Buffer = Buffer.alloc(STATE_HASH_SIZE)

/** One-shot SHA-256 (crypto.hash, Node 20.12 and later), as rfc6962.ts: twice a Hash object's speed on inputs this small. */
export const sha256: (data: Uint8Array) => Buffer = typeof crypto.hash === 'function'
  ? data => crypto.hash('sha256', data, 'buffer')
  : data => createHash('sha256').update(data).digest()

/** the inputs, assembled in place (hashing is synchronous) */
const leafInput = Buffer.alloc(1 + 2 * STATE_HASH_SIZE, 0x00)
const nodeInput = Buffer.alloc(1 + 2 * STATE_HASH_SIZE, 0x01)

/** Throws, naming `what`, unless `bytes` is 32 bytes. */
export function check32 (bytes: Uint8Array, what: string): void {
  if (!(bytes instanceof Uint8Array)) throw new TypeError(`${what} must be a Uint8Array of ${STATE_HASH_SIZE} bytes`)
  if (bytes.length !== STATE_HASH_SIZE) throw new RangeError(`${what} must be ${STATE_HASH_SIZE} bytes, not ${bytes.length}`)
}

/** A policy's path in the tree: SHA-256 of its id's UTF-8 bytes. */
export function statePath (id: string): Buffer {
  return sha256(Buffer.from(id, 'utf8'))
}

/** SHA-256(0x00 ‖ path ‖ valueHash): a leaf, and the hash of any subtree holding only it. */
export function leafNodeHash (path: Uint8Array, valueHash: Uint8Array): Buffer {
  check32(path, 'a state path')
  check32(valueHash, 'a value hash')
  leafInput.set(path, 1)
  leafInput.set(valueHash, 1 + STATE_HASH_SIZE)
  return sha256(leafInput)
}

/** SHA-256(0x01 ‖ left ‖ right): a subtree of two leaves or more (either side may be PLACEHOLDER). */
export function innerNodeHash (left: Uint8Array, right: Uint8Array): Buffer {
  check32(left, 'a left child hash')
  check32(right, 'a right child hash')
  nodeInput.set(left, 1)
  nodeInput.set(right, 1 + STATE_HASH_SIZE)
  return sha256(nodeInput)
}

/** Bit `index` of a path, from the most significant bit of byte 0 (celestia's getBitAtFromMSB). */
export function pathBit (path: Uint8Array, index: number): number {
  return (path[index >>> 3] >>> (7 - (index & 7))) & 1
}

/** How many leading bits two paths share (PATH_BITS when they are equal). */
export function commonPrefixBits (a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < STATE_HASH_SIZE; i++) {
    const x = a[i] ^ b[i]
    if (x !== 0) return i * 8 + Math.clz32(x) - 24
  }
  return PATH_BITS
}

/** Whether `hash` is the placeholder (32 zero bytes). */
export function isPlaceholder (hash: Uint8Array): boolean {
  if (hash.length !== STATE_HASH_SIZE) return false
  for (let i = 0; i < STATE_HASH_SIZE; i++) if (hash[i] !== 0) return false
  return true
}
