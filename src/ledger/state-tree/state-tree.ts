import { PATH_BITS, STATE_HASH_SIZE, check32, pathBit, sha256 } from './hashing.js'
import type { StateProof } from './proof.js'

/**
 * Nodes live in slabs of SLAB entries, typed arrays allocated as the tree grows: no JS object
 * per node, no copy of everything when it grows, and at most one slab's worth of slack.
 */
const SLAB_BITS = 14
const SLAB = 1 << SLAB_BITS
const MASK = SLAB - 1
const H = STATE_HASH_SIZE
/** a leaf's record: its path, then its value hash */
const LEAF_BYTES = 2 * H
/** the end of a free list */
const NONE = -1

/** The hashes' inputs, assembled in place (hashing is synchronous). */
const nodeInput = Buffer.alloc(1 + 2 * H, 0x01)
const leafInput = Buffer.alloc(1 + 2 * H, 0x00)
/** the placeholder, this module's own copy */
const ZEROS = Buffer.alloc(H)

export interface StateLeaf {
  readonly path: Buffer
  readonly valueHash: Buffer
}

/**
 * The ledger's state commitment: a compact sparse Merkle tree over 256-bit paths, in
 * celestiaorg/smt's format (hashing.ts). A subtree holding one leaf is that leaf's hash, so
 * each leaf sits where its path parts from every other; an empty subtree is the placeholder.
 *
 * Stored as a PATRICIA trie: only branch nodes (both sides non-empty) and leaves are kept.
 * The single-child inner nodes the format has between a branch and its parent (a "chain",
 * placeholders on one side) are hashed on the way up, not stored; with random paths they are
 * some 30% of all inner nodes. A branch keeps the hash of its subtree seen from its
 * parent's edge, chain included, which is what its parent and proofs need.
 *
 * Memory: a leaf is 64 bytes (path, value hash), a branch 42 (hash, two child references,
 * depth, dirty flag), and a tree of n leaves has n - 1 branches: about 106 bytes a leaf, plus
 * one slab of slack (102 bytes of heap a leaf measured at 1,000,000, bench/state-tree.ts).
 * Leaf hashes are not kept: recomputing a dirty branch's leaf children costs about a tenth of
 * a root(), keeping them would cost 32 bytes a leaf.
 *
 * set and delete only mark the branches on their path dirty; root() rehashes the dirty ones,
 * so a batch of updates hashes its shared upper levels once. A child reference is a branch's
 * index (>= 0) or the bitwise complement of a leaf's (< 0).
 */
export class StateTree {
  private bLeft: Int32Array[] = []
  private bRight: Int32Array[] = []
  private bDepth: Uint8Array[] = []
  private bDirty: Uint8Array[] = []
  private bHash: Buffer[] = []
  private branchTop = 0
  /** freed branches, linked through bLeft */
  private branchFree = NONE
  private leafData: Buffer[] = []
  private leafTop = 0
  /** freed leaves, linked through their first 4 bytes */
  private leafFree = NONE
  private rootRef = 0
  private count = 0
  private hashCount = 0

  /** the number of leaves */
  get size (): number { return this.count }

  /** SHA-256 computations so far: what root() and prove() cost (tests, benchmarks). */
  get hashes (): number { return this.hashCount }

  /** The bytes the tree's slabs hold (what it costs, slack included). */
  get allocatedBytes (): number {
    return this.bHash.length * SLAB * (H + 4 + 4 + 1 + 1) + this.leafData.length * SLAB * LEAF_BYTES
  }

  /** Inserts a leaf, or replaces its value hash. */
  set (path: Uint8Array, valueHash: Uint8Array): void {
    check32(path, 'a state path')
    check32(valueHash, 'a value hash')
    if (this.count === 0) {
      this.rootRef = ~this.newLeaf(path, valueHash)
      this.count = 1
      return
    }
    const found = this.findLeaf(path)
    const shared = this.sharedBits(found, path)
    if (shared === PATH_BITS) {
      const data = this.leafData[found >>> SLAB_BITS]
      const at = (found & MASK) * LEAF_BYTES + H
      if (data.compare(valueHash, 0, H, at, at + H) === 0) return
      data.set(valueHash, at)
      this.markPath(path)
      return
    }
    // the new leaf parts from `found` at bit `shared`: a branch there, above the first node
    // on the path deeper than that (no branch sits at `shared` itself: the path would have
    // led to its other side, away from `found`)
    const leaf = this.newLeaf(path, valueHash)
    let parent = NONE
    let side = 0
    let ref = this.rootRef
    while (ref >= 0 && this.depth(ref) < shared) {
      this.setDirty(ref)
      parent = ref
      side = pathBit(path, this.depth(ref))
      ref = this.child(ref, side)
    }
    // a branch below now has a shorter chain up to its new parent
    if (ref >= 0) this.setDirty(ref)
    const branch = this.newBranch(shared)
    if (pathBit(path, shared) === 0) this.setChildren(branch, ~leaf, ref)
    else this.setChildren(branch, ref, ~leaf)
    if (parent === NONE) this.rootRef = branch
    else this.setChild(parent, side, branch)
    this.count++
  }

  /** Removes a leaf; false when there is none at `path`. Its sibling moves up to where their parent was. */
  delete (path: Uint8Array): boolean {
    check32(path, 'a state path')
    if (this.count === 0) return false
    const found = this.findLeaf(path)
    if (this.sharedBits(found, path) !== PATH_BITS) return false
    this.freeLeaf(found)
    this.count--
    if (this.rootRef < 0) return true
    let grandparent = NONE
    let parentSide = 0
    let parent = this.rootRef
    let side = pathBit(path, this.depth(parent))
    for (let ref = this.child(parent, side); ref >= 0; ref = this.child(parent, side)) {
      this.setDirty(parent)
      grandparent = parent
      parentSide = side
      parent = ref
      side = pathBit(path, this.depth(ref))
    }
    const sibling = this.child(parent, side ^ 1)
    this.freeBranch(parent)
    if (grandparent === NONE) this.rootRef = sibling
    else this.setChild(grandparent, parentSide, sibling)
    // its chain now reaches up to the grandparent
    if (sibling >= 0) this.setDirty(sibling)
    return true
  }

  /** The value hash at `path`, or undefined. */
  get (path: Uint8Array): Buffer | undefined {
    check32(path, 'a state path')
    if (this.count === 0) return undefined
    const found = this.findLeaf(path)
    if (this.sharedBits(found, path) !== PATH_BITS) return undefined
    const at = (found & MASK) * LEAF_BYTES + H
    return Buffer.from(this.leafData[found >>> SLAB_BITS].subarray(at, at + H))
  }

  has (path: Uint8Array): boolean {
    check32(path, 'a state path')
    return this.count > 0 && this.sharedBits(this.findLeaf(path), path) === PATH_BITS
  }

  /** The root: the placeholder when empty, the leaf's hash with one leaf. Rehashes what changed since the last call. */
  root (): Buffer {
    if (this.count === 0) return Buffer.alloc(H)
    if (this.rootRef < 0) return this.leafHash(~this.rootRef)
    this.rehash(this.rootRef, -1)
    return Buffer.from(this.storedHash(this.rootRef))
  }

  clear (): void {
    this.bLeft = []
    this.bRight = []
    this.bDepth = []
    this.bDirty = []
    this.bHash = []
    this.leafData = []
    this.branchTop = this.leafTop = this.count = 0
    this.branchFree = this.leafFree = NONE
  }

  /**
   * A proof that `path` holds its value hash (membership) or holds nothing (the path ends at a
   * placeholder, or at another leaf); proof.ts verifies it.
   */
  prove (path: Uint8Array): StateProof {
    check32(path, 'a state path')
    if (this.count === 0) return { sideNodes: [] }
    if (this.rootRef >= 0) this.rehash(this.rootRef, -1)
    const found = this.findLeaf(path)
    const shared = this.sharedBits(found, path)
    // collected from the root down, listed from the leaf up; each placeholder its own zeros
    const sides: Buffer[] = []
    let ref = this.rootRef
    let above = -1
    while (ref >= 0 && this.depth(ref) < shared) {
      const depth = this.depth(ref)
      for (let level = above + 1; level < depth; level++) sides.push(Buffer.alloc(H))
      const bit = pathBit(path, depth)
      sides.push(this.edgeHash(this.child(ref, bit ^ 1)))
      above = depth
      ref = this.child(ref, bit)
    }
    if (ref < 0) {
      const proof: StateProof = { sideNodes: sides.reverse() }
      return shared === PATH_BITS ? proof : { ...proof, otherLeaf: this.leaf(~ref) }
    }
    // the path leaves this branch's chain at bit `shared`: an empty subtree beside the chain's rest
    for (let level = above + 1; level < shared; level++) sides.push(Buffer.alloc(H))
    sides.push(this.chainHash(ref, shared + 1))
    return { sideNodes: sides.reverse() }
  }

  /** The leaves in path order. The tree must not change while this runs. */
  * leaves (): Generator<StateLeaf> {
    if (this.count === 0) return
    const stack = [this.rootRef]
    while (stack.length > 0) {
      const ref = stack.pop() as number
      if (ref < 0) {
        yield this.leaf(~ref)
      } else {
        stack.push(this.child(ref, 1), this.child(ref, 0))
      }
    }
  }

  private leaf (leaf: number): StateLeaf {
    const at = (leaf & MASK) * LEAF_BYTES
    const data = this.leafData[leaf >>> SLAB_BITS]
    return { path: Buffer.from(data.subarray(at, at + H)), valueHash: Buffer.from(data.subarray(at + H, at + LEAF_BYTES)) }
  }

  /** The leaf the path leads to, following its bits at each branch (another leaf's when it is absent). */
  private findLeaf (path: Uint8Array): number {
    let ref = this.rootRef
    while (ref >= 0) ref = this.child(ref, pathBit(path, this.depth(ref)))
    return ~ref
  }

  /** how many leading bits a leaf's path shares with `path` */
  private sharedBits (leaf: number, path: Uint8Array): number {
    const data = this.leafData[leaf >>> SLAB_BITS]
    const at = (leaf & MASK) * LEAF_BYTES
    for (let i = 0; i < H; i++) {
      const x = data[at + i] ^ path[i]
      if (x !== 0) return i * 8 + Math.clz32(x) - 24
    }
    return PATH_BITS
  }

  /** Marks dirty every branch on the path down to its leaf. */
  private markPath (path: Uint8Array): void {
    for (let ref = this.rootRef; ref >= 0; ref = this.child(ref, pathBit(path, this.depth(ref)))) this.setDirty(ref)
  }

  /** Recomputes a dirty branch's edge hash (its subtree's, wrapped in its chain up to below `above`, its parent's depth). */
  private rehash (branch: number, above: number): void {
    if (this.bDirty[branch >>> SLAB_BITS][branch & MASK] === 0) return
    const depth = this.depth(branch)
    const left = this.child(branch, 0)
    const right = this.child(branch, 1)
    if (left >= 0) this.rehash(left, depth)
    if (right >= 0) this.rehash(right, depth)
    const hash = this.wrap(branch, this.ownHash(left, right), depth, above + 1)
    hash.copy(this.bHash[branch >>> SLAB_BITS], (branch & MASK) * H)
    this.bDirty[branch >>> SLAB_BITS][branch & MASK] = 0
  }

  /** SHA-256(0x01 ‖ edge(left) ‖ edge(right)): a branch's hash at its own depth. */
  private ownHash (left: number, right: number): Buffer {
    this.writeEdge(left, 1)
    this.writeEdge(right, 1 + H)
    this.hashCount++
    return sha256(nodeInput)
  }

  /** The hash at depth `top` above a branch's own (at `depth`), through the chain's single-child nodes. */
  private wrap (branch: number, own: Buffer, depth: number, top: number): Buffer {
    if (top >= depth) return own
    // the chain's bits are every leaf's below it: the leftmost one's
    let ref = branch
    while (ref >= 0) ref = this.child(ref, 0)
    const data = this.leafData[~ref >>> SLAB_BITS]
    const at = (~ref & MASK) * LEAF_BYTES
    let hash = own
    for (let level = depth - 1; level >= top; level--) {
      if (((data[at + (level >>> 3)] >>> (7 - (level & 7))) & 1) === 0) {
        hash.copy(nodeInput, 1)
        ZEROS.copy(nodeInput, 1 + H)
      } else {
        ZEROS.copy(nodeInput, 1)
        hash.copy(nodeInput, 1 + H)
      }
      this.hashCount++
      hash = sha256(nodeInput)
    }
    return hash
  }

  /** A (clean) branch's subtree hash at depth `top`, between its parent's depth and its own. */
  private chainHash (branch: number, top: number): Buffer {
    const depth = this.depth(branch)
    return this.wrap(branch, this.ownHash(this.child(branch, 0), this.child(branch, 1)), depth, top)
  }

  /** Writes a child's edge hash into nodeInput at `offset`. */
  private writeEdge (ref: number, offset: number): void {
    if (ref >= 0) {
      this.bHash[ref >>> SLAB_BITS].copy(nodeInput, offset, (ref & MASK) * H, (ref & MASK) * H + H)
    } else {
      this.leafHash(~ref).copy(nodeInput, offset)
    }
  }

  private edgeHash (ref: number): Buffer {
    return ref >= 0 ? Buffer.from(this.storedHash(ref)) : this.leafHash(~ref)
  }

  private leafHash (leaf: number): Buffer {
    const at = (leaf & MASK) * LEAF_BYTES
    this.leafData[leaf >>> SLAB_BITS].copy(leafInput, 1, at, at + LEAF_BYTES)
    this.hashCount++
    return sha256(leafInput)
  }

  private storedHash (branch: number): Buffer {
    const at = (branch & MASK) * H
    return this.bHash[branch >>> SLAB_BITS].subarray(at, at + H)
  }

  private depth (branch: number): number { return this.bDepth[branch >>> SLAB_BITS][branch & MASK] }

  private child (branch: number, side: number): number {
    return (side === 0 ? this.bLeft : this.bRight)[branch >>> SLAB_BITS][branch & MASK]
  }

  private setChild (branch: number, side: number, ref: number): void {
    (side === 0 ? this.bLeft : this.bRight)[branch >>> SLAB_BITS][branch & MASK] = ref
  }

  private setChildren (branch: number, left: number, right: number): void {
    this.bLeft[branch >>> SLAB_BITS][branch & MASK] = left
    this.bRight[branch >>> SLAB_BITS][branch & MASK] = right
  }

  private setDirty (branch: number): void { this.bDirty[branch >>> SLAB_BITS][branch & MASK] = 1 }

  private newBranch (depth: number): number {
    let branch = this.branchFree
    if (branch !== NONE) {
      this.branchFree = this.child(branch, 0)
    } else {
      branch = this.branchTop++
      if ((branch & MASK) === 0) {
        this.bLeft.push(new Int32Array(SLAB))
        this.bRight.push(new Int32Array(SLAB))
        this.bDepth.push(new Uint8Array(SLAB))
        this.bDirty.push(new Uint8Array(SLAB))
        this.bHash.push(Buffer.alloc(SLAB * H))
      }
    }
    this.bDepth[branch >>> SLAB_BITS][branch & MASK] = depth
    this.setDirty(branch)
    return branch
  }

  private freeBranch (branch: number): void {
    this.setChild(branch, 0, this.branchFree)
    this.branchFree = branch
  }

  private newLeaf (path: Uint8Array, valueHash: Uint8Array): number {
    let leaf = this.leafFree
    if (leaf !== NONE) {
      this.leafFree = this.leafData[leaf >>> SLAB_BITS].readInt32LE((leaf & MASK) * LEAF_BYTES)
    } else {
      leaf = this.leafTop++
      if ((leaf & MASK) === 0) this.leafData.push(Buffer.alloc(SLAB * LEAF_BYTES))
    }
    const data = this.leafData[leaf >>> SLAB_BITS]
    const at = (leaf & MASK) * LEAF_BYTES
    data.set(path, at)
    data.set(valueHash, at + H)
    return leaf
  }

  private freeLeaf (leaf: number): void {
    this.leafData[leaf >>> SLAB_BITS].writeInt32LE(this.leafFree, (leaf & MASK) * LEAF_BYTES)
    this.leafFree = leaf
  }
}
