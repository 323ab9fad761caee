import { PATH_BITS, STATE_HASH_SIZE, check32, commonPrefixBits, innerNodeHash, isPlaceholder, leafNodeHash, pathBit } from './hashing.js'

/**
 * What a snapshot needs from the state tree, as pure functions over leaves: the state is cut
 * into 2^D chunks by the first D bits of the path, each chunk is checked by its subtree's hash,
 * and the chunks' hashes combine into the root the ledger commits to. The same compact rules
 * as the tree (state-tree.ts): an empty subtree is the placeholder, a subtree of one leaf is
 * that leaf's hash, any other an inner node.
 */

/** the placeholder, this module's own copy */
const ZEROS = Buffer.alloc(STATE_HASH_SIZE)

export interface LeafEntry {
  readonly path: Uint8Array
  readonly valueHash: Uint8Array
}

export interface ChunkHash {
  /** the chunk's subtree hash, subtreeRoot(its leaves, depth) */
  readonly hash: Uint8Array
  /** how many leaves it holds (only 0, 1 or more matters) */
  readonly count: number
}

/** chunks aim at this many leaves */
export const CHUNK_LEAVES = 1024
/** at most 2^16 chunks */
export const MAX_CHUNK_DEPTH = 16

/** D, the prefix bits that cut `leafCount` leaves into chunks of about CHUNK_LEAVES: max(0, ⌈log₂(count / 1024)⌉), at most 16. */
export function chunkDepth (leafCount: number): number {
  if (!Number.isSafeInteger(leafCount) || leafCount < 0) throw new RangeError(`a leaf count must be a whole number >= 0, not ${leafCount}`)
  // by doubling, not Math.log2: exact at the powers of two
  let depth = 0
  while (depth < MAX_CHUNK_DEPTH && CHUNK_LEAVES * 2 ** depth < leafCount) depth++
  return depth
}

function checkDepth (depth: number): void {
  if (!Number.isInteger(depth) || depth < 0 || depth > MAX_CHUNK_DEPTH) throw new RangeError(`a chunk depth must be a whole number from 0 to ${MAX_CHUNK_DEPTH}, not ${depth}`)
}

/** The chunk a path falls in: its first `depth` bits as a number. */
export function chunkIndexOf (path: Uint8Array, depth: number): number {
  check32(path, 'a state path')
  checkDepth(depth)
  let index = 0
  for (let bit = 0; bit < depth; bit++) index = index * 2 + pathBit(path, bit)
  return index
}

/**
 * The hash of the subtree at `depth` holding exactly `leaves`, sorted by path, all sharing
 * their first `depth` bits (a chunk's leaves, at the chunk depth). Throws when they are not.
 */
export function subtreeRoot (leaves: readonly LeafEntry[], depth: number): Buffer {
  if (!Number.isInteger(depth) || depth < 0 || depth > PATH_BITS) throw new RangeError(`a subtree depth must be a whole number from 0 to ${PATH_BITS}, not ${depth}`)
  for (let i = 0; i < leaves.length; i++) {
    check32(leaves[i].path, `the path of leaf ${i}`)
    check32(leaves[i].valueHash, `the value hash of leaf ${i}`)
    if (i === 0) continue
    const shared = commonPrefixBits(leaves[i - 1].path, leaves[i].path)
    if (shared === PATH_BITS) throw new RangeError(`leaves ${i - 1} and ${i} have the same path`)
    if (pathBit(leaves[i - 1].path, shared) === 1) throw new RangeError(`leaves ${i - 1} and ${i} are not sorted by path`)
    if (shared < depth) throw new RangeError(`leaves ${i - 1} and ${i} part at bit ${shared}, above the subtree's depth ${depth}`)
  }
  return hashRange(leaves, 0, leaves.length, depth)
}

/** The root of a whole leaf set, in any order, without a StateTree (tests, snapshot builders). */
export function bulkRoot (leaves: Iterable<LeafEntry>): Buffer {
  const sorted = [...leaves].sort((a, b) => Buffer.compare(a.path, b.path))
  return subtreeRoot(sorted, 0)
}

/** the subtree at `depth` over sorted leaves[start, end), which share their first `depth` bits */
function hashRange (leaves: readonly LeafEntry[], start: number, end: number, depth: number): Buffer {
  if (end === start) return Buffer.from(ZEROS)
  if (end - start === 1) return leafNodeHash(leaves[start].path, leaves[start].valueHash)
  // the first leaf going right at this bit (sorted: those going left come first)
  let low = start
  let high = end
  while (low < high) {
    const middle = (low + high) >>> 1
    if (pathBit(leaves[middle].path, depth) === 0) low = middle + 1
    else high = middle
  }
  return innerNodeHash(hashRange(leaves, start, low, depth + 1), hashRange(leaves, low, end, depth + 1))
}

/**
 * The root from the 2^depth chunks' subtree hashes, in chunk order. Each level pairs
 * neighbours as the tree does: two empty make an empty one, an empty one beside a lone leaf
 * makes that leaf (the compact rule lifts it), anything else an inner node.
 */
export function rootFromChunks (chunks: readonly ChunkHash[], depth: number): Buffer {
  checkDepth(depth)
  if (chunks.length !== 2 ** depth) throw new RangeError(`depth ${depth} makes ${2 ** depth} chunks, not ${chunks.length}`)
  let level = chunks.map((chunk, i): { hash: Buffer, count: number } => {
    check32(chunk.hash, `the hash of chunk ${i}`)
    if (!Number.isSafeInteger(chunk.count) || chunk.count < 0) throw new RangeError(`chunk ${i} counts ${chunk.count} leaves`)
    if ((chunk.count === 0) !== isPlaceholder(chunk.hash)) throw new RangeError(`chunk ${i} has ${chunk.count} leaves and ${chunk.count === 0 ? 'a hash' : 'the placeholder'}: only an empty chunk is the placeholder`)
    return { hash: Buffer.from(chunk.hash), count: chunk.count }
  })
  while (level.length > 1) {
    const up: typeof level = []
    for (let i = 0; i < level.length; i += 2) {
      const left = level[i]
      const right = level[i + 1]
      const count = left.count + right.count
      if (left.count === 0) up.push(right.count <= 1 ? right : { hash: innerNodeHash(ZEROS, right.hash), count })
      else if (right.count === 0) up.push(left.count === 1 ? left : { hash: innerNodeHash(left.hash, ZEROS), count })
      else up.push({ hash: innerNodeHash(left.hash, right.hash), count })
    }
    level = up
  }
  return level[0].hash
}
