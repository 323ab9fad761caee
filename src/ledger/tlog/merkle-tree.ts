import { LedgerMeshError } from '../../base/errors.js'
import { EMPTY_ROOT, HASH_SIZE, leafHash, nodeHash, splitPoint } from './rfc6962.js'

/**
 * One level of the tree: the hashes of its complete subtrees, 32 bytes each, in one buffer.
 * A tree grown from a compact range (a node bootstrapped from a snapshot) holds nothing below
 * `start` at each level: asking for it is a `compacted` error.
 */
class HashLevel {
  private buffer = Buffer.alloc(HASH_SIZE * 64)
  private count = 0

  constructor (readonly start = 0) {}

  /** the index after the last hash held (the level's width in the tree) */
  get length (): number { return this.start + this.count }

  push (hash: Uint8Array): void {
    if ((this.count + 1) * HASH_SIZE > this.buffer.length) {
      const grown = Buffer.alloc(this.buffer.length * 2)
      this.buffer.copy(grown, 0, 0, this.count * HASH_SIZE)
      this.buffer = grown
    }
    this.buffer.set(hash, this.count * HASH_SIZE)
    this.count++
  }

  get (index: number): Buffer {
    const at = index - this.start
    if (at < 0) throw compactedBelow(this.start)
    return this.buffer.subarray(at * HASH_SIZE, (at + 1) * HASH_SIZE)
  }

  truncate (length: number): void {
    if (length < this.start) throw compactedBelow(this.start)
    this.count = Math.min(this.count, length - this.start)
  }
}

function compactedBelow (start: number): LedgerMeshError {
  return new LedgerMeshError('compacted', `this node's log tree begins at a snapshot: it holds no hashes before subtree ${start} of that level (ask a node that holds the whole log)`)
}

/**
 * Leaves hashed ahead of their append (MerkleTree.extend): the root the tree has once they are
 * appended, and the subtree hashes they complete, kept so that appending them
 * (MerkleTree.appendExtension) hashes nothing again. The tree is not changed until then.
 */
export interface TreeExtension {
  /** the tree size it extends */
  readonly base: number
  /** the tree size once it is appended */
  readonly size: number
  /** the root at `size` */
  readonly root: Buffer
}

interface PendingLevels extends TreeExtension {
  readonly tree: MerkleTree
  /** the tree's changes when the extension was made: any since makes it stale */
  readonly changes: number
  /** per level, the hashes of the complete subtrees the extension adds there */
  readonly added: Array<readonly Uint8Array[]>
}

/**
 * The log's RFC 6962 Merkle tree, kept as it grows. Level k holds the hash of every complete
 * subtree of 2^k leaves (leaves themselves at level 0), so an append costs O(log n) hashes,
 * and the root at any size and any inclusion or consistency proof costs O(log n) lookups and
 * at most O(log n) hashes along the tree's ragged right edge. Memory: 64 bytes per leaf.
 *
 * Leaves are numbered from 0: the log's entry seq s is leaf s - 1.
 */
export class MerkleTree {
  private readonly levels: HashLevel[] = [new HashLevel()]
  /** counts appends and truncations: an extension made before any is stale */
  private changes = 0

  /** the number of leaves */
  get size (): number { return this.levels[0].length }

  /**
   * A tree of `size` leaves known only by its compact range: the roots of its maximal complete
   * subtrees, largest (leftmost) first, as a snapshot's manifest carries them (checked against
   * the checkpoint's root by the caller). It grows, and proves leaves and sizes from `size` on;
   * anything before is `compacted`.
   */
  static fromCompactRange (size: number, frontier: readonly Uint8Array[]): MerkleTree {
    const tree = new MerkleTree()
    const levels: HashLevel[] = []
    let next = 0
    const bits = size === 0 ? 1 : Math.floor(Math.log2(size)) + 1
    for (let level = bits - 1; level >= 0; level--) {
      const width = Math.floor(size / 2 ** level)
      const held = width % 2 === 1
      levels[level] = new HashLevel(held ? width - 1 : width)
      if (held) {
        if (frontier[next] === undefined) throw new RangeError(`a compact range of ${frontier.length} hashes for a tree of ${size} leaves`)
        levels[level].push(frontier[next++])
      }
    }
    if (next !== frontier.length) throw new RangeError(`a compact range of ${frontier.length} hashes for a tree of ${size} leaves`)
    tree.levels.splice(0, tree.levels.length, ...levels)
    return tree
  }

  /**
   * The compact range at `size` (what fromCompactRange takes): the roots of the maximal
   * complete subtrees of the first `size` leaves, one per set bit of `size`, largest first.
   */
  compactRange (size = this.size): Buffer[] {
    this.check(size, this.size)
    const range: Buffer[] = []
    for (let level = this.levels.length - 1; level >= 0; level--) {
      const width = Math.floor(size / 2 ** level)
      if (width % 2 === 1) range.push(this.subtreeAt(level, width - 1))
    }
    return range
  }

  /** The first leaf this tree holds a hash of (0 unless it grew from a compact range). */
  get start (): number { return this.levels[0].start }

  /** Appends an entry (its bytes) and answers its leaf hash. */
  append (entry: Uint8Array): Buffer {
    const hash = leafHash(entry)
    this.appendLeafHash(hash)
    return hash
  }

  /** Appends a leaf by its hash (a tree rebuilt from hashes a store kept). */
  appendLeafHash (hash: Uint8Array): void {
    this.changes++
    let index = this.levels[0].length
    this.levels[0].push(hash)
    // each completed pair makes its parent, up the levels
    for (let level = 0; index % 2 === 1; level++) {
      const parent = nodeHash(this.levels[level].get(index - 1), this.levels[level].get(index))
      if (this.levels[level + 1] === undefined) this.levels.push(new HashLevel())
      this.levels[level + 1].push(parent)
      index = (index - 1) / 2
    }
  }

  /** Drops the leaves from `size` on (a replica truncating a divergent tail). */
  truncate (size: number): void {
    if (size >= this.size) return
    this.changes++
    for (let level = 0; level < this.levels.length; level++) this.levels[level].truncate(Math.floor(size / 2 ** level))
  }

  leafHash (index: number): Buffer {
    this.check(index, this.size - 1)
    return this.levels[0].get(index)
  }

  /** The hash of complete subtree `index` of 2^level leaves (what a log tile holds). */
  subtreeAt (level: number, index: number): Buffer {
    const stored = this.levels[level]
    if (stored !== undefined && Number.isInteger(index) && index >= 0 && index < stored.start) throw compactedBelow(stored.start)
    if (stored === undefined || !Number.isInteger(index) || index < 0 || index >= stored.length) throw new RangeError(`no complete subtree ${index} of 2^${level} leaves in this tree of ${this.size} leaves`)
    return stored.get(index)
  }

  /** The root of the tree of the first `size` leaves (the current size by default). */
  root (size = this.size): Buffer {
    this.check(size, this.size)
    return size === 0 ? EMPTY_ROOT : this.subtreeHash(0, size)
  }

  /**
   * The root the tree of its first `base` leaves would have with `extra` leaf hashes appended,
   * without appending them: a fork of the log at `base` (extend() is the way to grow the tree
   * itself, hashing each leaf's subtrees once).
   */
  rootWith (extra: readonly Uint8Array[], base = this.size): Buffer {
    this.check(base, this.size)
    const size = base + extra.length
    if (extra.length === 0) return this.root(base)
    const hashOf = (start: number, end: number): Buffer => {
      if (end <= base) return this.subtreeHash(start, end)
      if (end - start === 1) return Buffer.from(extra[start - base])
      const k = splitPoint(end - start)
      return nodeHash(hashOf(start, start + k), hashOf(start + k, end))
    }
    return hashOf(0, size)
  }

  /**
   * The tree with `extra` leaf hashes appended, hashed but not appended: its root (what the
   * master signs before the commit is known to be durable, what a replica checks a batch
   * against before storing it) and the subtrees the leaves complete, for appendExtension.
   */
  extend (extra: readonly Uint8Array[]): TreeExtension {
    const base = this.size
    const size = base + extra.length
    const added: Array<readonly Uint8Array[]> = [extra]
    // level k + 1 gains the parents of level k's pairs that the new hashes complete
    for (let level = 0; ; level++) {
      const had = this.levels[level]?.length ?? 0
      const hash = (index: number): Uint8Array => index < had ? this.levels[level].get(index) : added[level][index - had]
      const from = this.levels[level + 1]?.length ?? 0
      const to = Math.floor((had + added[level].length) / 2)
      if (to <= from) break
      const parents: Buffer[] = []
      for (let index = from; index < to; index++) parents.push(nodeHash(hash(2 * index), hash(2 * index + 1)))
      added.push(parents)
    }
    // the root folds the complete subtrees that make up `size` leaves, from the right
    let root: Uint8Array | undefined
    let end = size
    for (let level = 0; end > 0; level++) {
      const width = 2 ** level
      if (Math.floor(size / width) % 2 === 0) continue
      const index = end / width - 1
      const had = this.levels[level]?.length ?? 0
      const subtree = index < had ? this.levels[level].get(index) : added[level][index - had]
      root = root === undefined ? subtree : nodeHash(subtree, root)
      end -= width
    }
    const extension: PendingLevels = { base, size, root: root === undefined ? EMPTY_ROOT : Buffer.from(root), tree: this, changes: this.changes, added }
    return extension
  }

  /**
   * Appends the leaves of an extension this tree made, with the subtree hashes computed then.
   * Answers false, appending nothing, when the tree changed since (the caller appends the
   * leaves itself then).
   */
  appendExtension (extension: TreeExtension): boolean {
    const pending = extension as PendingLevels
    if (pending.tree !== this || pending.changes !== this.changes || pending.base !== this.size) return false
    pending.added.forEach((hashes, level) => {
      this.levels[level] ??= new HashLevel()
      for (const hash of hashes) this.levels[level].push(hash)
    })
    this.changes++
    return true
  }

  /** RFC 6962 PATH(index, D[0:size]): the audit path of leaf `index` in the tree of `size` leaves. */
  inclusionProof (index: number, size = this.size): Buffer[] {
    this.check(size, this.size)
    if (!Number.isInteger(index) || index < 0 || index >= size) throw new RangeError(`leaf ${index} is not in a tree of ${size} leaves`)
    const proof: Buffer[] = []
    this.path(index, 0, size, proof)
    return proof
  }

  /** RFC 6962 PROOF(first, D[0:second]): that the tree of `first` leaves is a prefix of the one of `second`. */
  consistencyProof (first: number, second = this.size): Buffer[] {
    this.check(second, this.size)
    if (!Number.isInteger(first) || first < 0 || first > second) throw new RangeError(`no consistency proof from size ${first} to size ${second}`)
    const proof: Buffer[] = []
    if (first > 0 && first < second) this.subproof(first, 0, second, true, proof)
    return proof
  }

  /** MTH(D[start:end]): a stored hash when the range is a complete, aligned subtree. */
  private subtreeHash (start: number, end: number): Buffer {
    const n = end - start
    if (n === 1) return this.levels[0].get(start)
    // a complete subtree of 2^k leaves starting at a multiple of 2^k is stored at level k
    if ((n & (n - 1)) === 0 && start % n === 0) {
      const level = Math.log2(n)
      if (this.levels[level] !== undefined && start / n < this.levels[level].length) return this.levels[level].get(start / n)
    }
    const k = splitPoint(n)
    return nodeHash(this.subtreeHash(start, start + k), this.subtreeHash(start + k, end))
  }

  private path (index: number, start: number, end: number, proof: Buffer[]): void {
    const n = end - start
    if (n === 1) return
    const k = splitPoint(n)
    if (index < k) {
      this.path(index, start, start + k, proof)
      proof.push(this.subtreeHash(start + k, end))
    } else {
      this.path(index - k, start + k, end, proof)
      proof.push(this.subtreeHash(start, start + k))
    }
  }

  private subproof (first: number, start: number, end: number, whole: boolean, proof: Buffer[]): void {
    const n = end - start
    if (first === n) {
      if (!whole) proof.push(this.subtreeHash(start, end))
      return
    }
    const k = splitPoint(n)
    if (first <= k) {
      this.subproof(first, start, start + k, whole, proof)
      proof.push(this.subtreeHash(start + k, end))
    } else {
      this.subproof(first - k, start + k, end, false, proof)
      proof.push(this.subtreeHash(start, start + k))
    }
  }

  private check (value: number, max: number): void {
    if (!Number.isInteger(value) || value < 0 || value > max) throw new RangeError(`${value} is beyond this tree of ${this.size} leaves`)
  }
}
