import t from 'tap'
import fc from 'fast-check'
import { MerkleTree } from '../src/ledger/tlog/merkle-tree.js'
import { EMPTY_ROOT, leafHash, nodeHash, splitPoint } from '../src/ledger/tlog/rfc6962.js'
import { verifyConsistency, verifyInclusion } from '../src/ledger/tlog/proof.js'
import { decodeBundle, encodeBundle, encodeTileIndex, hashTile, parseTilePath, tilePath, tilesOf } from '../src/ledger/tlog/tiles.js'

/** MTH by RFC 6962's definition, recomputed from every leaf: what the tree must agree with. */
function naiveRoot (entries: Uint8Array[]): Buffer {
  if (entries.length === 0) return EMPTY_ROOT
  if (entries.length === 1) return leafHash(entries[0])
  const k = splitPoint(entries.length)
  return nodeHash(naiveRoot(entries.slice(0, k)), naiveRoot(entries.slice(k)))
}

const treeOf = (entries: Uint8Array[]): MerkleTree => {
  const tree = new MerkleTree()
  for (const e of entries) tree.append(e)
  return tree
}

t.test('RFC 6962 test vectors: the roots of the reference tree of 8 leaves', async t => {
  // the leaves and roots of the RFC 6962 reference test data (certificate-transparency, Trillian)
  const leaves = ['', '00', '10', '2021', '3031', '40414243', '5051525354555657', '606162636465666768696a6b6c6d6e6f'].map(h => Buffer.from(h, 'hex'))
  const roots = [
    '6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d',
    'fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125',
    'aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77',
    'd37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7',
    '4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4',
    '76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef',
    'ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c',
    '5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328'
  ]
  const tree = treeOf(leaves)
  t.equal(tree.root(0).toString('hex'), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855', 'the empty tree')
  roots.forEach((root, i) => t.equal(tree.root(i + 1).toString('hex'), root, `size ${i + 1}`))
})

const entriesArb = fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 1, maxLength: 140 })

t.test('every root, inclusion proof and consistency proof agrees with RFC 6962 and verifies', async t => {
  fc.assert(fc.property(entriesArb, entries => {
    const tree = treeOf(entries)
    for (let size = 0; size <= entries.length; size++) {
      if (!tree.root(size).equals(naiveRoot(entries.slice(0, size)))) throw new Error(`root of size ${size}`)
    }
    const n = entries.length
    for (let size = 1; size <= n; size++) {
      const root = tree.root(size)
      for (let index = 0; index < size; index++) {
        const why = verifyInclusion(tree.leafHash(index), index, size, tree.inclusionProof(index, size), root)
        if (why !== undefined) throw new Error(`inclusion ${index}/${size}: ${why}`)
      }
      for (let first = 0; first <= size; first++) {
        const why = verifyConsistency(first, size, tree.consistencyProof(first, size), tree.root(first), root)
        if (why !== undefined) throw new Error(`consistency ${first}->${size}: ${why}`)
      }
    }
  }), { numRuns: 30 })
  t.pass('30 random trees of up to 140 leaves: every proof verifies')
})

t.test('a tampered leaf, proof, index, size or root fails with a reason', async t => {
  const entries = Array.from({ length: 37 }, (_, i) => Buffer.from(`entry ${i}`))
  const tree = treeOf(entries)
  const root = tree.root()
  const proof = tree.inclusionProof(20)
  t.equal(verifyInclusion(tree.leafHash(20), 20, 37, proof, root), undefined)
  t.match(verifyInclusion(leafHash(Buffer.from('entry 2O')), 20, 37, proof, root), /leads to another root/, 'a tampered entry')
  const flipped = proof.map((h, i) => i === 2 ? Buffer.from(h.map((b, j) => j === 0 ? b ^ 1 : b)) : h)
  t.match(verifyInclusion(tree.leafHash(20), 20, 37, flipped, root), /leads to another root/, 'a tampered proof hash')
  t.match(verifyInclusion(tree.leafHash(20), 21, 37, proof, root), /another root|too few|more hashes/, 'the wrong index')
  // a size whose path has another shape (36 would not: leaf 20 sits in the same complete
  // left subtree of 32 leaves, so the size is bound by the signed checkpoint, not the proof)
  t.match(verifyInclusion(tree.leafHash(20), 20, 24, proof, root), /another root|too few|more hashes/, 'the wrong tree size')
  t.match(verifyInclusion(tree.leafHash(20), 37, 37, proof, root), /not in a tree of 37 leaves/)
  t.match(verifyInclusion(tree.leafHash(20), 20, 37, [...proof, proof[0]], root), /more hashes/)
  t.match(verifyInclusion(tree.leafHash(20), 20, 37, [Buffer.alloc(31)], root), /31 bytes/)

  const consistency = tree.consistencyProof(13)
  t.equal(verifyConsistency(13, 37, consistency, tree.root(13), root), undefined)
  t.match(verifyConsistency(13, 37, consistency, tree.root(12), root), /not consistent/, 'another history of the first 13 entries')
  const forked = treeOf([...entries.slice(0, 13), Buffer.from('rewritten'), ...entries.slice(14)])
  t.match(verifyConsistency(13, 37, consistency, tree.root(13), forked.root()), /not consistent/, 'a rewritten entry after the first tree')
  t.match(verifyConsistency(14, 37, forked.consistencyProof(14), tree.root(14), forked.root()), /not consistent/, 'a rewritten entry inside the first tree')
  t.match(verifyConsistency(38, 37, [], root, root), /no consistency proof/)
  t.match(verifyConsistency(37, 37, [], root, tree.root(36)), /two different roots/)
})

t.test('a tree truncated and grown again has the roots of the log it holds', async t => {
  const entries = Array.from({ length: 50 }, (_, i) => Buffer.from(`e${i}`))
  const tree = treeOf(entries)
  tree.truncate(19)
  t.equal(tree.size, 19)
  t.ok(tree.root().equals(naiveRoot(entries.slice(0, 19))))
  const other = Array.from({ length: 10 }, (_, i) => Buffer.from(`other ${i}`))
  for (const e of other) tree.append(e)
  t.ok(tree.root().equals(naiveRoot([...entries.slice(0, 19), ...other])), 'a different tail after the cut')
  t.throws(() => tree.root(30), /beyond this tree of 29 leaves/)
  t.throws(() => tree.inclusionProof(29), /not in a tree of 29 leaves/)
})

t.test('an extension: the root with leaves appended, then appended without hashing again; stale after any change', async t => {
  fc.assert(fc.property(entriesArb, entriesArb, fc.nat(), (entries, extra, cut) => {
    const tree = treeOf(entries)
    const kept = entries.slice(0, cut % (entries.length + 1))
    tree.truncate(kept.length)
    const extension = tree.extend(extra.map(e => leafHash(e)))
    const all = [...kept, ...extra]
    if (tree.size !== kept.length) throw new Error('extend changed the tree')
    if (extension.base !== kept.length || extension.size !== all.length) throw new Error('extension sizes')
    if (!extension.root.equals(naiveRoot(all))) throw new Error(`root of ${kept.length} + ${extra.length}`)
    if (!tree.appendExtension(extension)) throw new Error('not appended')
    if (tree.appendExtension(extension)) throw new Error('appended twice')
    // every stored subtree is the one appends alone would have made
    const grown = treeOf(all)
    for (let level = 0; 2 ** level <= all.length; level++) {
      for (let index = 0; index < Math.floor(all.length / 2 ** level); index++) {
        if (!tree.subtreeAt(level, index).equals(grown.subtreeAt(level, index))) throw new Error(`subtree ${index} of 2^${level}`)
      }
    }
    if (!tree.root().equals(grown.root())) throw new Error('root after the append')
  }), { numRuns: 100 })
  const tree = treeOf([Buffer.from('a'), Buffer.from('b'), Buffer.from('c')])
  t.ok(tree.extend([]).root.equals(tree.root()), 'no leaves: the root as it is')
  t.ok(new MerkleTree().extend([]).root.equals(EMPTY_ROOT), 'the empty tree')
  const stale = tree.extend([leafHash(Buffer.from('d'))])
  tree.truncate(2)
  tree.append(Buffer.from('x'))
  t.notOk(tree.appendExtension(stale), 'a tree changed since the extension (same size, another leaf) appends nothing')
  t.equal(tree.size, 3)
  t.notOk(treeOf([]).appendExtension(stale), 'nor does another tree')
})

t.test('proof sizes stay within 32 bytes per level', async t => {
  const tree = new MerkleTree()
  for (let i = 0; i < 5000; i++) tree.append(Buffer.from(String(i)))
  const levels = Math.ceil(Math.log2(5000))
  for (const index of [0, 1, 2047, 2048, 4095, 4999]) t.ok(tree.inclusionProof(index).length <= levels, `leaf ${index}: ${tree.inclusionProof(index).length} hashes`)
  for (const first of [1, 1000, 4096, 4999]) t.ok(tree.consistencyProof(first).length <= levels + 1, `consistency from ${first}`)
})

t.test('C2SP tiles: paths, the tiles of a tree size, tile hashes and entry bundles', async t => {
  t.equal(encodeTileIndex(1234067), 'x001/x234/067', 'the C2SP example')
  t.equal(tilePath({ level: 0, index: 5 }), 'tile/0/005')
  t.equal(tilePath({ index: 1000, width: 17 }), 'tile/entries/x001/000.p/17')
  t.same(parseTilePath('1/x001/x234/067.p/255'), { level: 1, index: 1234067, width: 255 })
  t.same(parseTilePath('entries/000'), { level: undefined, index: 0, width: undefined })
  for (const bad of ['1/1234', '64/000', '0/000.p/256', '0/000.p/0', 'entries/x000', '01/000', '0/x01/000']) t.throws(() => parseTilePath(bad), { code: 'bad_command' }, bad)

  // the C2SP text's example: a tree of 70,000 entries
  const tiles = tilesOf(70_000)
  const level = (l: number | undefined): Array<{ index: number, width?: number }> => tiles.filter(x => x.level === l).map(({ index, width }) => ({ index, width }))
  t.equal(level(0).filter(x => x.width === undefined).length, 273)
  t.same(level(0).filter(x => x.width !== undefined), [{ index: 273, width: 112 }])
  t.same(level(1), [{ index: 0, width: undefined }, { index: 1, width: 17 }])
  t.same(level(2), [{ index: 0, width: 1 }])
  t.equal(level(undefined).length, 274, 'one entry bundle per level-0 tile')
  t.same(tilesOf(256).map(tilePath), ['tile/entries/000', 'tile/0/000', 'tile/1/000.p/1'], 'a tree of 256')

  const entries = Array.from({ length: 600 }, (_, i) => Buffer.from(`entry ${i}`))
  const tree = treeOf(entries)
  t.ok(hashTile(tree, { level: 0, index: 1 }, 600).equals(Buffer.concat(entries.slice(256, 512).map(e => leafHash(e)))), 'a level-0 tile holds leaf hashes')
  t.ok(hashTile(tree, { level: 1, index: 0, width: 2 }, 600).equals(Buffer.concat([naiveRoot(entries.slice(0, 256)), naiveRoot(entries.slice(256, 512))])), 'a level-1 tile holds the roots of full level-0 tiles')
  t.throws(() => hashTile(tree, { level: 0, index: 2 }, 600), { code: 'not_found', message: /not full yet/ })
  t.throws(() => hashTile(tree, { level: 0, index: 2, width: 87 }, 600), { code: 'not_found', message: /has 88 hashes/ })
  t.throws(() => hashTile(tree, { level: 0, index: 3, width: 1 }, 600), { code: 'not_found', message: /beyond the tree/ })

  const bundle = encodeBundle(['a', 'é', ''])
  t.same([...bundle], [0, 1, 0x61, 0, 2, 0xc3, 0xa9, 0, 0])
  t.same(decodeBundle(bundle), ['a', 'é', ''])
  t.throws(() => decodeBundle(bundle.subarray(0, 5)), /ends inside its entry/)
  t.throws(() => encodeBundle(['x'.repeat(65_536)]), /does not fit a bundle's 2-byte length/)
})

t.test('a tree grown from its compact range: the same roots and proofs from that size on, compacted before', async t => {
  const full = new MerkleTree()
  const leaves = Array.from({ length: 80 }, (_, i) => leafHash(Buffer.from(`leaf ${i}`)))
  for (const leaf of leaves) full.appendLeafHash(leaf)
  for (const size of [1, 2, 5, 6, 8, 31, 64, 65]) {
    const range = full.compactRange(size)
    t.equal(range.length, size.toString(2).split('1').length - 1, `size ${size}: one hash per set bit`)
    const grown = MerkleTree.fromCompactRange(size, range)
    t.same(grown.root(), full.root(size), `size ${size}: its root`)
    for (const leaf of leaves.slice(size)) grown.appendLeafHash(leaf)
    t.same(grown.root(), full.root(), `size ${size}: the same root once grown`)
    t.same(grown.inclusionProof(79), full.inclusionProof(79), `size ${size}: an inclusion proof past it`)
    t.same(grown.compactRange(), full.compactRange(), `size ${size}: the compact range at the end`)
    if (size > 1) t.throws(() => grown.leafHash(0), { code: 'compacted' }, `size ${size}: a leaf before it is compacted`)
  }
  t.throws(() => MerkleTree.fromCompactRange(6, full.compactRange(4)), RangeError, 'a range of the wrong length')
})
