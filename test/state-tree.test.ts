import t from 'tap'
import fc from 'fast-check'
import { createHash, randomBytes } from 'node:crypto'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { ROOT } from './helpers/node-process.js'
import { LedgerMeshError } from '../src/base/errors.js'
import { leafHash } from '../src/ledger/tlog/rfc6962.js'
import { PLACEHOLDER, innerNodeHash, leafNodeHash, statePath } from '../src/ledger/state-tree/hashing.js'
import { StateTree } from '../src/ledger/state-tree/state-tree.js'
import { checkStateProof, decodeStateProof, encodeStateProof, verifyStateProof, type StateProof } from '../src/ledger/state-tree/proof.js'
import { bulkRoot, chunkDepth, chunkIndexOf, rootFromChunks, subtreeRoot, type LeafEntry } from '../src/ledger/state-tree/snapshot-chunks.js'

const sha = (data: string | Uint8Array): Buffer => createHash('sha256').update(data).digest()
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const VALUES = [0, 1, 2, 3].map(i => sha(`value ${i}`))

/**
 * Paths that make deep trees: hashed ids, and a base path with one bit flipped at depths
 * from 0 to 255 (and two bits, deeper), so leaves part at every depth and long chains of
 * single-child nodes appear, as hashed ids never make them.
 */
const BASE = sha('base')
function pathPool (): Buffer[] {
  const pool = Array.from({ length: 12 }, (_, i) => statePath(`policy-${i}`))
  const base = BASE
  for (const bit of [0, 1, 7, 8, 100, 200, 254, 255]) {
    const p = Buffer.from(base)
    p[bit >>> 3] ^= 0x80 >>> (bit & 7)
    pool.push(p)
  }
  pool.push(base)
  for (const [a, b] of [[200, 255], [100, 101], [254, 255]]) {
    const p = Buffer.from(base)
    p[a >>> 3] ^= 0x80 >>> (a & 7)
    p[b >>> 3] ^= 0x80 >>> (b & 7)
    pool.push(p)
  }
  return pool
}
const POOL = pathPool()

type Model = Map<string, Buffer>
const entriesOf = (model: Model): LeafEntry[] => [...model].map(([path, valueHash]) => ({ path: Buffer.from(path, 'hex'), valueHash }))

/** Throws unless every pool path's proof says what the model holds, and a wrong claim fails. */
function checkProofs (tree: StateTree, model: Model, root: Buffer): void {
  for (const path of POOL) {
    const value = model.get(hex(path))
    const proof = tree.prove(path)
    const why = checkStateProof(root, path, value, proof)
    if (why !== undefined) throw new Error(`proof of ${hex(path)} (${value === undefined ? 'absent' : 'present'}): ${why}`)
    const decoded = decodeStateProof(JSON.parse(JSON.stringify(encodeStateProof(proof))))
    if (!verifyStateProof(root, path, value, decoded)) throw new Error('the proof does not survive its JSON form')
    if (value !== undefined) {
      if (verifyStateProof(root, path, VALUES.find(v => !v.equals(value)), proof)) throw new Error('a proof of presence verifies another value')
      if (verifyStateProof(root, path, undefined, proof)) throw new Error('a proof of presence verifies absence')
    } else {
      if (verifyStateProof(root, path, VALUES[0], proof)) throw new Error('a proof of absence verifies presence')
    }
  }
}

t.test('hard numbers, computed by hand with Python hashlib (test/fixtures/smt_check.py): the empty tree, one leaf, two', async t => {
  const empty = new StateTree()
  t.equal(hex(empty.root()), '00'.repeat(32), 'the empty tree\'s root is the placeholder, 32 zero bytes')
  t.equal(hex(bulkRoot([])), '00'.repeat(32))
  const a = { path: statePath('probe-1'), valueHash: leafHash('example entry') }
  const b = { path: statePath('probe-2'), valueHash: leafHash('another entry') }
  t.equal(hex(a.path), '52aaae2ec0378ec1adf9e9cd95d7dd003fb49cb9a97cc77cfeb99ef45d0b60df', 'SHA-256 of the id')
  t.equal(hex(a.valueHash), '1f421e37c2bd929dcba56a40f42f7701bced85d23011aa544e59d02cb2a6b39d', 'the log entry\'s RFC 6962 leaf hash')
  const tree = new StateTree()
  tree.set(a.path, a.valueHash)
  t.equal(hex(tree.root()), '372acd8b49c2d8251684a20f9dad8349d98ae7344659690a1c6a3a4905706a06', 'one leaf: the root is SHA-256(0x00 ‖ path ‖ value hash)')
  tree.set(b.path, b.valueHash)
  // 0x52 starts with a 0 bit, 0xee with a 1: the two leaves are the root's children
  t.equal(hex(tree.root()), '4483bf0b01c13e334251afbb24b8c4dec4e181f30e8ed7bc2b65463b5024470c', 'two leaves parting at bit 0')
  t.equal(hex(bulkRoot([b, a])), '4483bf0b01c13e334251afbb24b8c4dec4e181f30e8ed7bc2b65463b5024470c')
  t.ok(tree.delete(b.path))
  t.equal(hex(tree.root()), '372acd8b49c2d8251684a20f9dad8349d98ae7344659690a1c6a3a4905706a06', 'deleting one lifts the other back to the root')
  t.ok(tree.delete(a.path))
  t.same(tree.root(), PLACEHOLDER)

  const run = spawnSync('python3', [join(ROOT, 'test', 'fixtures', 'smt_check.py')], {
    input: JSON.stringify({ leaves: [a, b].map(l => ({ path: hex(l.path), value_hash: hex(l.valueHash) })) }),
    encoding: 'utf8',
    timeout: 60_000
  })
  t.equal(run.status, 0, run.stderr)
  t.equal(JSON.parse(run.stdout).root, '4483bf0b01c13e334251afbb24b8c4dec4e181f30e8ed7bc2b65463b5024470c', 'the fixture computes the number this test states')
})

t.test('vectors from celestiaorg/smt\'s own code: the same roots and proofs, with the log entry\'s leaf hash as the value hash', async t => {
  // computed once with the Go library (NewSparseMerkleTree(NewSimpleMap(), NewSimpleMap(),
  // sha256.New()); Update("policy-<i>", 0x00 ‖ "entry <i>") for i = 0..9, then Delete("policy-3")),
  // whose leaf is SHA-256(0x00 ‖ SHA-256(key) ‖ SHA-256(value)): value = 0x00 ‖ entry makes
  // SHA-256(value) the entry's RFC 6962 leaf hash
  const tree = new StateTree()
  for (let i = 0; i < 10; i++) tree.set(statePath(`policy-${i}`), leafHash(`entry ${i}`))
  t.equal(hex(tree.root()), 'c5f56bc994cf92cb1f8a3baa1a1216d3a4dcb4050896df729d47d597337e1465', 'ten policies')
  t.ok(tree.delete(statePath('policy-3')))
  const root = tree.root()
  t.equal(hex(root), 'e504db991fff39fde3454c9ca2389d238a7dccc9b37e458950e40760e39eb972', 'one deleted')
  const present = tree.prove(statePath('policy-4'))
  t.same(present.sideNodes.map(hex), [
    '8ea6258c5c99f129d459e4e21b1e8e0d69e983dbe431e627385f15033af0fab0',
    '00'.repeat(32),
    '7566196dfffb5309f1fa6754dd82468ca96a497116491b4a702b395101210679',
    '88154f327011dbc9c927a6a62b7916c83a091fdb138e85e189ed503d093cb0e1',
    '9ecacf10bade4122e356023a597ba7e9b2848d5bbe2acbcdb7115a929ca6dd74'
  ], 'the side nodes of a present policy, a placeholder among them')
  const absent = tree.prove(statePath('policy-3'))
  t.same(absent.sideNodes.map(hex), [
    '8fea4464f5e1f9474c44660bedfe360355b2517e7f349a70c883967cb31c0436',
    '85acc594ec7e9e580aaecf1f9bc58f0e905f711bce67ae719c63dedcebcafe4d',
    '8ecab436f4e8838acf3be5be744042833fd3e84d9cc16569af13a7fa0d3bac9d'
  ], 'the side nodes of the deleted one')
  // celestia's NonMembershipLeafData: 0x00 ‖ path ‖ value hash
  t.equal('00' + hex(absent.otherLeaf?.path ?? Buffer.alloc(0)) + hex(absent.otherLeaf?.valueHash ?? Buffer.alloc(0)),
    '001a861cd5119de13b29de9b22f0aa8047bb6990c6a880b4bd58b57e59c43348c794910e42789c1962450908451ff9b1c050a7d6cde7d4d2d4e97f2f7509694b9f', 'and the leaf found in its place')
  t.ok(verifyStateProof(root, statePath('policy-4'), leafHash('entry 4'), present))
  t.ok(verifyStateProof(root, statePath('policy-3'), undefined, absent))
})

t.test('malformed paths and value hashes are refused, naming the problem', async t => {
  const tree = new StateTree()
  t.throws(() => tree.set(Buffer.alloc(31), VALUES[0]), /state path must be 32 bytes, not 31/)
  t.throws(() => tree.set(POOL[0], Buffer.alloc(33)), /value hash must be 32 bytes, not 33/)
  t.throws(() => tree.get(Buffer.alloc(0)), /state path must be 32 bytes/)
  t.throws(() => tree.prove('x' as unknown as Uint8Array), /state path must be a Uint8Array/)
  t.throws(() => verifyStateProof(Buffer.alloc(16), POOL[0], undefined, { sideNodes: [] }), /state root must be 32 bytes/)
  t.throws(() => leafNodeHash(POOL[0], Buffer.alloc(20)), /value hash must be 32 bytes, not 20/)
  t.equal(tree.size, 0, 'nothing was stored')
  t.throws(() => subtreeRoot([{ path: POOL[1], valueHash: VALUES[0] }, { path: POOL[1], valueHash: VALUES[1] }], 0), /same path/)
  const sorted = [POOL[0], POOL[1]].sort(Buffer.compare).map(path => ({ path, valueHash: VALUES[0] }))
  t.throws(() => subtreeRoot([sorted[1], sorted[0]], 0), /not sorted/)
  t.throws(() => bulkRoot([{ path: POOL[3], valueHash: VALUES[0] }, { path: POOL[3], valueHash: VALUES[0] }]), /same path/)
})

const opsArb = fc.array(fc.record({
  del: fc.boolean(),
  key: fc.nat(POOL.length - 1),
  value: fc.nat(VALUES.length - 1),
  /** take the root here (else updates batch up until a later root) */
  look: fc.boolean()
}), { maxLength: 120 })

t.test('after any sequence of sets, replaces and deletes the root is the whole set\'s; proofs verify; lookups and leaves agree', async t => {
  fc.assert(fc.property(opsArb, ops => {
    const tree = new StateTree()
    const model: Model = new Map()
    for (const { del, key, value, look } of ops) {
      const path = POOL[key]
      if (del) {
        const had = model.delete(hex(path))
        if (tree.delete(path) !== had) throw new Error(`delete answered ${String(!had)}`)
      } else {
        model.set(hex(path), VALUES[value])
        tree.set(path, VALUES[value])
      }
      if (look && !tree.root().equals(bulkRoot(entriesOf(model)))) throw new Error('the incremental root differs from the whole set\'s')
    }
    const root = tree.root()
    if (!root.equals(bulkRoot(entriesOf(model)))) throw new Error('the final root differs')
    if (tree.size !== model.size) throw new Error(`size ${tree.size}, not ${model.size}`)
    for (const path of POOL) {
      const value = model.get(hex(path))
      if (tree.has(path) !== (value !== undefined)) throw new Error('has')
      const got = tree.get(path)
      if (value === undefined ? got !== undefined : got?.equals(value) !== true) throw new Error('get')
    }
    const listed = [...tree.leaves()].map(l => `${hex(l.path)}:${hex(l.valueHash)}`)
    const expected = [...model].map(([p, v]) => `${p}:${hex(v)}`).sort()
    if (listed.join() !== expected.join()) throw new Error('leaves() is not the set in path order')
    checkProofs(tree, model, root)
  }), { numRuns: 300 })
})

t.test('history independence: the same set by different orders and detours has the same root', async t => {
  fc.assert(fc.property(fc.uniqueArray(fc.nat(POOL.length - 1), { minLength: 1 }), fc.array(fc.nat(POOL.length - 1)), fc.nat(), (keys, detour, seed) => {
    const value = (k: number): Buffer => VALUES[k % VALUES.length]
    const first = new StateTree()
    for (const k of keys) first.set(POOL[k], value(k))
    const second = new StateTree()
    // another order (rotated and reversed), passing through other keys and other values first
    const order = [...keys.slice(seed % keys.length), ...keys.slice(0, seed % keys.length)].reverse()
    for (const k of detour) second.set(POOL[k], VALUES[(k + 1) % VALUES.length])
    second.root()
    for (const k of detour) if (!keys.includes(k)) second.delete(POOL[k])
    for (const k of order) second.set(POOL[k], value(k))
    if (!first.root().equals(second.root())) throw new Error('two orders, two roots')
  }), { numRuns: 300 })
})

t.test('altered proofs fail', async t => {
  const tree = new StateTree()
  const present = POOL.filter((_, i) => i % 3 !== 0)
  present.forEach((path, i) => tree.set(path, VALUES[i % VALUES.length]))
  const root = tree.root()
  let checked = 0
  for (const path of POOL) {
    const value = tree.get(path)
    const proof = tree.prove(path)
    t.ok(verifyStateProof(root, path, value, proof))
    for (let i = 0; i < proof.sideNodes.length; i++) {
      const sideNodes = [...proof.sideNodes]
      const flipped = Buffer.from(sideNodes[i])
      flipped[i % 32] ^= 1
      sideNodes[i] = flipped
      if (verifyStateProof(root, path, value, { ...proof, sideNodes })) t.fail(`side node ${i} flipped still verifies`)
      checked++
    }
    t.notOk(verifyStateProof(root, path, value, { ...proof, sideNodes: proof.sideNodes.slice(1) }), 'a side node dropped')
    t.notOk(verifyStateProof(root, path, value, { ...proof, sideNodes: [PLACEHOLDER, ...proof.sideNodes] }), 'a placeholder added')
    // another path: one parting at bit 0 takes every side node to the other side
    const other = Buffer.from(path)
    other[0] ^= 0x80
    if (value !== undefined || proof.sideNodes.length > 0) t.notOk(verifyStateProof(root, other, value, proof), 'the proof for another path')
    if (proof.otherLeaf !== undefined) {
      t.notOk(verifyStateProof(root, path, undefined, { sideNodes: proof.sideNodes }), 'absence claimed at a placeholder where a leaf is')
      t.notOk(verifyStateProof(root, path, undefined, { ...proof, otherLeaf: { ...proof.otherLeaf, valueHash: VALUES[3].equals(proof.otherLeaf.valueHash) ? VALUES[2] : VALUES[3] } }), 'the other leaf with another value')
      t.notOk(verifyStateProof(root, proof.otherLeaf.path, undefined, proof), 'the other leaf itself proved absent')
    }
  }
  t.ok(checked > 50, `${checked} side nodes flipped`)
  // an other-leaf proof can only show a leaf where the path leads
  const absent = POOL.find(p => !tree.has(p) && tree.prove(p).otherLeaf !== undefined)
  if (absent === undefined) throw new Error('no absence shown by another leaf among the pool')
  const proof = tree.prove(absent)
  const elsewhere = [...tree.leaves()].find(l => !l.path.equals(proof.otherLeaf?.path ?? Buffer.alloc(0)))
  t.match(checkStateProof(root, absent, undefined, { ...proof, otherLeaf: elsewhere }), /parts from the path|another root/)
  // a root made to put a leaf off its path (bit 0 of 1 where the path has 0): refused before any hashing
  const left = Buffer.alloc(32)
  const right = Buffer.alloc(32, 0x80)
  const offPath = innerNodeHash(leafNodeHash(right, VALUES[0]), PLACEHOLDER)
  t.match(checkStateProof(offPath, left, undefined, { sideNodes: [PLACEHOLDER], otherLeaf: { path: right, valueHash: VALUES[0] } }), /other leaf parts from the path at bit 0, above depth 1/)
  t.match(checkStateProof(root, absent, VALUES[0], proof), /names another leaf/)
  t.match(checkStateProof(root, absent, undefined, { sideNodes: Array(257).fill(PLACEHOLDER) }), /deeper than/)
  t.match(checkStateProof(root, absent, undefined, { sideNodes: [Buffer.alloc(31)] }), /side node 0 is not 32 bytes/)
})

t.test('the JSON form: round trips, compresses placeholders, and refuses anything malformed with a clear error', async t => {
  const tree = new StateTree()
  for (const path of POOL.slice(12)) tree.set(path, VALUES[1])
  const deep = tree.prove(BASE)
  t.equal(deep.sideNodes.length, 256, 'a leaf at the bottom (its neighbour parts at bit 255)')
  const json = encodeStateProof(deep)
  t.equal(json.num_side_nodes, deep.sideNodes.length)
  t.ok(json.side_nodes.length < 12, 'placeholders are in the bit mask, not listed')
  t.same(decodeStateProof(json), deep)
  const absent = tree.prove(statePath('nobody'))
  t.same(decodeStateProof(JSON.parse(JSON.stringify(encodeStateProof(absent)))), absent)

  const bad = (value: unknown, pattern: RegExp, what: string): void => {
    try {
      decodeStateProof(value)
      t.fail(`${what}: accepted`)
    } catch (err) {
      t.ok(err instanceof LedgerMeshError && err.code === 'bad_message', `${what}: a LedgerMeshError`)
      t.match((err as Error).message, pattern, what)
    }
  }
  bad(null, /state proof: the proof/, 'null')
  bad('proof', /state proof/, 'a string')
  bad({ ...json, num_side_nodes: 257 }, /num_side_nodes/, 'too deep')
  bad({ ...json, num_side_nodes: -1 }, /num_side_nodes/, 'negative')
  bad({ ...json, num_side_nodes: json.num_side_nodes - 8 }, /bit_mask is \d+ bytes/, 'a mask of the wrong length')
  bad({ ...json, side_nodes: [...json.side_nodes, json.side_nodes[0]] }, /more than/, 'a side node too many')
  bad({ ...json, side_nodes: json.side_nodes.slice(1) }, /fewer than/, 'a side node too few')
  bad({ ...json, side_nodes: [json.side_nodes[0].slice(4), ...json.side_nodes.slice(1)] }, /side_nodes\.0: is not/, 'a short hash')
  bad({ ...json, side_nodes: ['!!!!', ...json.side_nodes.slice(1)] }, /side_nodes\.0: is not canonical base64/, 'not base64')
  bad({ ...json, side_nodes: [PLACEHOLDER.toString('base64'), ...json.side_nodes.slice(1)] }, /placeholder, which bit_mask marks/, 'a listed placeholder')
  bad({ ...json, extra: 1 }, /state proof/, 'an unknown field')
  bad({ ...json, other_leaf: { path: 'AA==' } }, /other_leaf/, 'a malformed other leaf')
  const padded = Buffer.from(json.bit_mask, 'base64')
  padded[padded.length - 1] |= 1
  if (json.num_side_nodes % 8 !== 0) bad({ ...json, bit_mask: padded.toString('base64') }, /past the/, 'a bit set past the side nodes')
  fc.assert(fc.property(fc.anything(), value => {
    try { decodeStateProof(value) } catch (err) { if (!(err instanceof LedgerMeshError)) throw err }
  }))
})

t.test('snapshot chunks: their subtree roots combine into the root at every depth, empty and one-leaf chunks included', async t => {
  t.same([0, 1, 1024, 1025, 2048, 2049, 100_000, 1_000_000, 2 ** 40].map(chunkDepth), [0, 0, 0, 1, 1, 2, 7, 10, 16])
  t.throws(() => chunkDepth(-1), /leaf count/)
  const path = Buffer.alloc(32)
  path[0] = 0b10110000
  path[1] = 0b10000000
  t.same([0, 1, 2, 4, 9, 16].map(d => chunkIndexOf(path, d)), [0, 1, 2, 11, 0b101100001, 0b1011000010000000])
  t.throws(() => chunkIndexOf(path, 17), /chunk depth/)
  t.throws(() => rootFromChunks([{ hash: PLACEHOLDER, count: 0 }], 1), /makes 2 chunks, not 1/)
  t.throws(() => rootFromChunks([{ hash: PLACEHOLDER, count: 1 }], 0), /only an empty chunk/)

  const arb = fc.tuple(fc.uniqueArray(fc.nat(POOL.length + 60), { maxLength: POOL.length + 60 }), fc.nat(8))
  fc.assert(fc.property(arb, ([keys, depth]) => {
    const tree = new StateTree()
    const leaves = keys.map((k, i) => ({ path: k < POOL.length ? POOL[k] : statePath(`chunked-${k}`), valueHash: VALUES[i % VALUES.length] }))
    for (const l of leaves) tree.set(l.path, l.valueHash)
    const sorted = [...tree.leaves()]
    const chunks = Array.from({ length: 2 ** depth }, (_, c) => sorted.filter(l => chunkIndexOf(l.path, depth) === c))
    const hashes = chunks.map(chunk => ({ hash: subtreeRoot(chunk, depth), count: chunk.length }))
    if (!rootFromChunks(hashes, depth).equals(tree.root())) throw new Error(`depth ${depth}: chunks combine into another root`)
    if (!bulkRoot(leaves).equals(tree.root())) throw new Error('bulkRoot')
  }), { numRuns: 200 })
  // the compact rule between chunks: one leaf beside empty chunks is the root, as it is alone in the tree
  const lone = { path: POOL[0], valueHash: VALUES[0] }
  const chunks = Array.from({ length: 16 }, (_, c) => c === chunkIndexOf(lone.path, 4) ? { hash: leafNodeHash(lone.path, lone.valueHash), count: 1 } : { hash: PLACEHOLDER, count: 0 })
  t.same(rootFromChunks(chunks, 4), leafNodeHash(lone.path, lone.valueHash))
  t.same(subtreeRoot([lone], 200), leafNodeHash(lone.path, lone.valueHash), 'a one-leaf subtree is its leaf at any depth')
})

t.test('an independent implementation (Python, from the definition) computes the same root, proofs and chunk hashes, and verifies our proofs', async t => {
  const tree = new StateTree()
  const leaves: LeafEntry[] = []
  const put = (path: Buffer, valueHash: Buffer): void => { tree.set(path, valueHash); leaves.push({ path, valueHash }) }
  for (let i = 0; i < 300; i++) put(statePath(`policy-${i}`), leafHash(`entry ${i}`))
  for (const path of POOL.slice(12)) put(path, leafHash(hex(path)))
  // churn the incremental tree: replaced and deleted leaves must leave no trace
  for (let i = 0; i < 60; i++) tree.set(statePath(`policy-${i}`), VALUES[0])
  tree.root()
  for (let i = 0; i < 60; i++) tree.set(statePath(`policy-${i}`), leafHash(`entry ${i}`))
  for (let i = 0; i < 40; i++) tree.set(statePath(`gone-${i}`), VALUES[1])
  tree.root()
  for (let i = 0; i < 40; i++) tree.delete(statePath(`gone-${i}`))
  const root = tree.root()

  const present = [...leaves.filter((_, i) => i % 7 === 0), ...leaves.slice(300)]
  const absent = [...Array.from({ length: 40 }, (_, i) => statePath(`absent-${i}`)), ...POOL.slice(0, 12).filter(p => !tree.has(p)), Buffer.alloc(32), Buffer.alloc(32, 0xff)]
  const queries = [
    ...present.map(l => ({ path: l.path, valueHash: l.valueHash as Uint8Array | undefined, proof: tree.prove(l.path) })),
    ...absent.map(path => ({ path, valueHash: undefined, proof: tree.prove(path) }))
  ]
  const tampered = [
    { ...queries[0], valueHash: VALUES[2] },
    { ...queries[present.length], valueHash: VALUES[2] },
    { ...queries[1], path: queries[2].path }
  ]
  const depths = [0, 1, 3, 9]
  const run = spawnSync('python3', [join(ROOT, 'test', 'fixtures', 'smt_check.py')], {
    input: JSON.stringify({
      leaves: leaves.map(l => ({ path: hex(l.path), value_hash: hex(l.valueHash) })),
      proofs: [...queries, ...tampered].map(q => ({ path: hex(q.path), value_hash: q.valueHash === undefined ? null : hex(q.valueHash), proof: encodeStateProof(q.proof) })),
      expect: queries.map(q => hex(q.path)),
      chunk_depths: depths
    }),
    encoding: 'utf8',
    timeout: 120_000
  })
  t.equal(run.status, 0, run.stderr)
  const verdict = JSON.parse(run.stdout)
  t.equal(verdict.root, hex(root), 'the same root')
  t.same(verdict.verified, [...queries.map(() => true), false, false, false], 'our proofs verify there; tampered ones do not')
  t.same(verdict.expected, queries.map(q => encodeStateProof(q.proof)), 'our proofs are the ones the definition gives')
  t.ok(queries.some(q => q.proof.otherLeaf !== undefined) && queries.some(q => q.valueHash === undefined && q.proof.otherLeaf === undefined), 'absence by another leaf and by a placeholder both checked')
  const sorted = [...tree.leaves()]
  for (const depth of depths) {
    const ours = Array.from({ length: 2 ** depth }, (_, c) => hex(subtreeRoot(sorted.filter(l => chunkIndexOf(l.path, depth) === c), depth)))
    t.same(verdict.chunks[String(depth)], ours, `chunk hashes at depth ${depth}`)
  }
  t.ok(queries.every(q => verifyStateProof(root, q.path, q.valueHash, q.proof)), 'and they verify here')
})

t.test('tens of thousands of leaves across slabs, batches of updates, deletes and reuse of freed nodes', async t => {
  const tree = new StateTree()
  const model = new Map<string, Buffer>()
  const n = 40_000
  const paths = Array.from({ length: n }, () => randomBytes(32))
  for (let i = 0; i < n; i++) { tree.set(paths[i], VALUES[i % 4]); model.set(hex(paths[i]), VALUES[i % 4]) }
  t.equal(tree.size, n)
  t.same(tree.root(), bulkRoot(entriesOf(model)), 'built by inserts')
  for (let batch = 0; batch < 3; batch++) {
    for (let j = 0; j < 1000; j++) {
      const i = (batch * 7919 + j * 13) % n
      if (j % 3 === 0) { tree.delete(paths[i]); model.delete(hex(paths[i])) } else { tree.set(paths[i], VALUES[(i + batch + 1) % 4]); model.set(hex(paths[i]), VALUES[(i + batch + 1) % 4]) }
    }
    t.same(tree.root(), bulkRoot(entriesOf(model)), `after batch ${batch}`)
  }
  const bytes = tree.allocatedBytes
  t.ok(bytes / tree.size < 160, `${(bytes / tree.size).toFixed(1)} bytes a leaf allocated`)
  for (const path of paths) tree.delete(path)
  t.equal(tree.size, 0)
  t.same(tree.root(), PLACEHOLDER)
  for (let i = 0; i < n; i++) tree.set(paths[i], VALUES[0])
  t.equal(tree.allocatedBytes, bytes, 'freed nodes are reused: no new slabs')
  t.same(tree.root(), bulkRoot(paths.map(path => ({ path, valueHash: VALUES[0] }))))
  const sample = paths[17]
  t.ok(verifyStateProof(tree.root(), sample, VALUES[0], tree.prove(sample)))
  tree.clear()
  t.equal(tree.size, 0)
  t.equal(tree.allocatedBytes, 0)
  t.same(tree.root(), PLACEHOLDER)
  tree.set(sample, VALUES[1])
  t.same(tree.root(), leafNodeHash(sample, VALUES[1]))
})

t.test('hashing is lazy: root() rehashes only the paths changed since, a batch sharing its upper levels', async t => {
  const tree = new StateTree()
  const paths = Array.from({ length: 20_000 }, (_, i) => statePath(`lazy-${i}`))
  for (const path of paths) tree.set(path, VALUES[0])
  const full = tree.hashes
  t.equal(full, 0, 'set hashes nothing')
  const root = tree.root()
  const built = tree.hashes
  t.ok(built >= 2 * paths.length - 1, `the first root() hashes every node: ${built} hashes`)
  t.same(tree.root(), root)
  t.equal(tree.hashes, built, 'a second root() with nothing changed hashes nothing')
  tree.set(paths[5], VALUES[1])
  tree.root()
  const one = tree.hashes - built
  // depth about log2(20,000) = 14: one branch a level, its chain nodes, its leaf children
  t.ok(one > 10 && one < 80, `one update rehashes its path: ${one} hashes`)
  const before = tree.hashes
  for (let i = 0; i < 1000; i++) tree.set(paths[i * 20], VALUES[2])
  tree.root()
  const batch = tree.hashes - before
  t.ok(batch < 1000 * one * 0.6, `a batch of 1,000 shares the upper levels: ${batch} hashes, not 1,000 x ${one}`)
  t.same(tree.root(), bulkRoot(paths.map((path, i) => ({ path, valueHash: i % 20 === 0 ? VALUES[2] : i === 5 ? VALUES[1] : VALUES[0] }))))
})

t.test('what the tree hands out is the caller\'s: writing into a proof or a root changes nothing in the tree', async t => {
  const tree = new StateTree()
  for (const path of POOL) tree.set(path, VALUES[0])
  const root = tree.root()
  const proof = tree.prove(BASE)
  const placeholder = proof.sideNodes.findIndex(node => node.equals(PLACEHOLDER))
  t.ok(placeholder >= 0, 'a proof with placeholders')
  proof.sideNodes.forEach(node => node.fill(7))
  root.fill(7)
  tree.set(POOL[0], VALUES[1])
  tree.set(POOL[0], VALUES[0])
  t.same(tree.root(), bulkRoot(POOL.map(path => ({ path, valueHash: VALUES[0] }))))
  t.same(PLACEHOLDER, Buffer.alloc(32), 'the shared placeholder is untouched')
  t.ok(verifyStateProof(tree.root(), BASE, VALUES[0], tree.prove(BASE)))
})

t.test('a proof of the empty tree and of a one-leaf tree', async t => {
  const tree = new StateTree()
  const proof: StateProof = tree.prove(POOL[0])
  t.same(proof, { sideNodes: [] })
  t.ok(verifyStateProof(PLACEHOLDER, POOL[0], undefined, proof))
  tree.set(POOL[0], VALUES[0])
  t.same(tree.prove(POOL[0]), { sideNodes: [] })
  t.ok(verifyStateProof(tree.root(), POOL[0], VALUES[0], tree.prove(POOL[0])))
  const other = tree.prove(POOL[1])
  t.same(other.otherLeaf, { path: POOL[0], valueHash: VALUES[0] })
  t.ok(verifyStateProof(tree.root(), POOL[1], undefined, other))
  t.same(innerNodeHash(PLACEHOLDER, PLACEHOLDER).length, 32)
})

t.test('a snapshot capture puts each live policy in its chunk, in path order (48-bit keys first, Buffer.compare on a tie)', async t => {
  const { byPath, captureSnapshot } = await import('../src/ledger/snapshot/capture.js')
  // paths sharing their first six bytes (where the numeric key ties) and differing anywhere after
  const prefix = fc.uint8Array({ minLength: 6, maxLength: 6 })
  const paths = fc.array(fc.tuple(fc.constantFrom(0, 1, 2), fc.uint8Array({ minLength: 26, maxLength: 26 })), { minLength: 2, maxLength: 60 })
  fc.assert(fc.property(fc.array(prefix, { minLength: 3, maxLength: 3 }), paths, (prefixes, rest) => {
    const leaves = rest.map(([p, tail], seq) => { const path = Buffer.concat([prefixes[p]!, tail]); return { path, seq, key: path.readUIntBE(0, 6) } })
    const ours = [...leaves].sort(byPath).map(l => l.path.toString('hex'))
    const reference = [...leaves].sort((a, b) => Buffer.compare(a.path, b.path)).map(l => l.path.toString('hex'))
    return ours.join() === reference.join()
  }), { numRuns: 300 })

  const count = 5000
  const logged = Array.from({ length: count }, (_, i) => [createHash('sha256').update(`policy ${i}`).digest('hex'), i + 1] as [string, number])
  const source = {
    state: { logged: () => logged[Symbol.iterator]() },
    tree: { compactRange: () => [] },
    head: { seq: count, hash: 'h' },
    signedHead: { seq: count, hash: 'h', state: { size: count } }
  } as unknown as Parameters<typeof captureSnapshot>[0]
  const capture = await captureSnapshot(source)
  t.equal(capture.depth, chunkDepth(count))
  t.equal(capture.chunks.reduce((n, c) => n + c.seqs.length, 0), count, 'every policy in one chunk')
  const seqOf = new Map(logged.map(([id, seq]) => [statePath(id).toString('hex'), seq]))
  for (const [index, chunk] of capture.chunks.entries()) {
    const hex = chunk.paths.map(p => p.toString('hex'))
    if (hex.join() !== [...hex].sort().join()) t.fail(`chunk ${index} is not in path order`)
    if (!chunk.paths.every(p => chunkIndexOf(p, capture.depth) === index)) t.fail(`chunk ${index} holds a path of another chunk`)
    if (!chunk.paths.every((p, i) => seqOf.get(p.toString('hex')) === chunk.seqs[i])) t.fail(`chunk ${index}: a path and its seq do not belong together`)
  }
})
