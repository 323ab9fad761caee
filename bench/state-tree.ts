import { randomBytes } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { StateTree } from '../src/ledger/state-tree/state-tree.js'
import { verifyStateProof } from '../src/ledger/state-tree/proof.js'
import { envInt, envInts, percentile, round } from './lib/harness.js'

/**
 * state-tree: the ledger's state commitment (src/ledger/state-tree/) at BENCH_STATE_LEAVES
 * leaves (default 100,000 and 1,000,000, random 32-byte paths). The tree is built by inserts
 * in batches of 1,000 with a root() after each, as appends would; then BENCH_STATE_BATCHES
 * (default 30) batches of 1,000 of each kind of update, each batch followed by root():
 * sets of fresh keys (deleted again afterwards, untimed), replaces of present keys' value
 * hashes, deletes of present keys (put back afterwards, untimed). Reported per kind: updates/s
 * of the set/delete calls alone, and root() per batch (what rehashing the dirty paths costs),
 * p50 and p99, and the hashes it took. Memory: the process's heap and array buffers after a
 * full GC, before the tree and after, per leaf, beside the bytes the tree's slabs hold. Then
 * 1,000 proofs, and a restore's build: every leaf set, then one root().
 */
const BATCH = 1000

/** global.gc, exposed now when node was started without --expose-gc */
function gcFunction (): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc
  if (typeof exposed === 'function') return exposed
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

function usedBytes (gc: () => void): number {
  gc()
  gc()
  const m = process.memoryUsage()
  return m.heapUsed + m.arrayBuffers
}

export async function stateTree (): Promise<object[]> {
  const sizes = envInts('BENCH_STATE_LEAVES', [100_000, 1_000_000])
  const batches = envInt('BENCH_STATE_BATCHES', 30)
  const gc = gcFunction()
  const rows: object[] = []
  for (const n of sizes) {
    // every path the run uses, in one buffer made before the tree: its bytes are not the tree's
    const spare = (2 + 2 * batches) * BATCH
    const paths = randomBytes(32 * (n + spare))
    const path = (i: number): Buffer => paths.subarray(32 * i, 32 * i + 32)
    const values = [randomBytes(32)]
    const before = usedBytes(gc)
    const tree = new StateTree()
    let started = performance.now()
    for (let i = 0; i < n; i++) {
      tree.set(path(i), values[0])
      if ((i + 1) % BATCH === 0) tree.root()
    }
    tree.root()
    const buildSeconds = (performance.now() - started) / 1000
    const heapPerLeaf = (usedBytes(gc) - before) / n
    rows.push({
      what: 'build: inserts, root() every 1,000', leaves: n, seconds: round(buildSeconds, 2), us_per_insert: round(buildSeconds * 1e6 / n, 2),
      heap_bytes_per_leaf: round(heapPerLeaf, 1), slab_bytes_per_leaf: round(tree.allocatedBytes / n, 1),
      goal: `< 150 bytes a leaf: ${heapPerLeaf < 150 ? 'met' : 'missed'}`
    })

    const kinds: Record<string, { update: number[], root: number[], hashes: number[] }> = {
      'set fresh keys': { update: [], root: [], hashes: [] }, replace: { update: [], root: [], hashes: [] }, delete: { update: [], root: [], hashes: [] }
    }
    /** root(), timed, and the hashes it took */
    const timedRoot = (kind: { root: number[], hashes: number[] }): void => {
      const hashes = tree.hashes
      const started = performance.now()
      tree.root()
      kind.root.push(performance.now() - started)
      kind.hashes.push(tree.hashes - hashes)
    }
    let fresh = n
    for (let b = 0; b < batches; b++) {
      // fresh keys: timed, then removed untimed
      started = performance.now()
      for (let i = 0; i < BATCH; i++) tree.set(path(fresh + i), values[0])
      kinds['set fresh keys'].update.push(performance.now() - started)
      timedRoot(kinds['set fresh keys'])
      for (let i = 0; i < BATCH; i++) tree.delete(path(fresh + i))
      fresh += BATCH
      tree.root()
      // replaces of random present keys
      const present = Array.from({ length: BATCH }, () => Math.floor(Math.random() * n))
      started = performance.now()
      const value = randomBytes(32)
      for (const i of present) tree.set(path(i), value)
      kinds.replace.update.push(performance.now() - started)
      timedRoot(kinds.replace)
      // deletes of distinct present keys: timed, then put back untimed
      const gone = [...new Set(present)]
      started = performance.now()
      for (const i of gone) tree.delete(path(i))
      kinds.delete.update.push((performance.now() - started) * BATCH / gone.length)
      timedRoot(kinds.delete)
      for (const i of gone) tree.set(path(i), values[0])
      tree.root()
    }
    if (tree.size !== n) throw new Error(`state-tree: ${tree.size} leaves after the batches, not ${n}`)
    for (const [what, { update, root, hashes }] of Object.entries(kinds)) {
      const total = update.reduce((a, b) => a + b, 0)
      const both = update.map((u, i) => u + root[i])
      rows.push({
        what: `${what}, batches of 1,000`, leaves: n, batches, updates_per_s: Math.round(BATCH * update.length / (total / 1000)),
        root_ms_p50: round(percentile(root, 50), 2), root_ms_p99: round(percentile(root, 99), 2),
        us_per_update_with_root: round(percentile(both, 50) * 1000 / BATCH, 2), root_hashes_p50: percentile(hashes, 50)
      })
    }

    const root = tree.root()
    const proofs: number[] = []
    let maxSides = 0
    for (let i = 0; i < 1000; i++) {
      const index = i % 2 === 0 ? Math.floor(Math.random() * n) : n + spare - 1 - i
      started = performance.now()
      const proof = tree.prove(path(index))
      proofs.push(performance.now() - started)
      maxSides = Math.max(maxSides, proof.sideNodes.length)
      if (!verifyStateProof(root, path(index), index < n ? tree.get(path(index)) : undefined, proof)) throw new Error(`state-tree: the proof of ${index} does not verify`)
    }
    rows.push({ what: 'prove (half present, half absent)', leaves: n, p50_ms: round(percentile(proofs, 50), 4), p99_ms: round(percentile(proofs, 99), 4), max_side_nodes: maxSides })

    // as a snapshot restore would: every leaf set, then one root()
    tree.clear()
    started = performance.now()
    for (let i = 0; i < n; i++) tree.set(path(i), values[0])
    const setSeconds = (performance.now() - started) / 1000
    const hashes = tree.hashes
    started = performance.now()
    tree.root()
    const rootSeconds = (performance.now() - started) / 1000
    rows.push({ what: 'restore: all sets, then one root()', leaves: n, seconds: round(setSeconds + rootSeconds, 2), set_seconds: round(setSeconds, 2), root_seconds: round(rootSeconds, 2), root_hashes: tree.hashes - hashes })
    tree.clear()
  }
  return rows
}
