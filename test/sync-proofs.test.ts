import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { SYNC_PROTOCOL, decodeRequest, encodeResponse, type SyncRequest } from '../src/protocols/sync/index.js'
import { signHead } from '../src/ledger/head.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { insertProbes, ledgerPeer, startSync } from './helpers/libp2p.js'

/**
 * Proofs over the sync protocol: a replica asks a source for an inclusion proof of an entry
 * and for a consistency proof from its own tree to the source's checkpoint, and checks both
 * against the master's signed head. A source that lies about the entry, the proof or the head
 * is refused with a reason.
 */
t.test('inclusion and consistency proofs over sync, checked against the signed head', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master)
  await insertProbes(master.ledger, 300)
  const replica = await ledgerPeer(t)
  const sync = await startSync(t, replica)
  await sync.pull(master.address)
  await insertProbes(master.ledger, 77, 'later')
  const head = master.ledger.signedHead!

  for (const seq of [1, 150, 300, 377]) {
    const { head: theirs, proof } = await sync.prove(master.address, { seq })
    t.equal(theirs.seq, head.seq, `entry ${seq}: against the master's checkpoint`)
    t.equal(proof.entry?.seq, seq)
    t.ok(proof.hashes.length <= Math.ceil(Math.log2(head.seq)), `entry ${seq}: ${proof.hashes.length} hashes`)
  }
  const { proof } = await sync.prove(master.address, { first: replica.ledger.head.seq })
  t.equal(proof.size, head.seq, 'a consistency proof from the replica\'s 300 entries to the master\'s 377')

  // what a source cannot answer is a clear refusal
  await t.rejects(sync.prove(master.address, { seq: 10_000 }), /entry 10000 is not in the tree of 377 entries/)
  await t.rejects(sync.prove(master.address, { first: 1000 }), /this node's tree has only 300 entries/)
})

t.test('a source that lies in a proof answer is refused', async t => {
  const master = await ledgerPeer(t, { master: true })
  await insertProbes(master.ledger, 40)
  const replica = await ledgerPeer(t)
  const sync = await startSync(t, replica)
  await startSync(t, master)
  await sync.pull(master.address)

  // a source serving proofs by hand: `answer` decides each frame
  const liar = await ledgerPeer(t)
  let answer = (_req: SyncRequest): Uint8Array => new Uint8Array()
  await liar.libp2p.handle(SYNC_PROTOCOL, async (stream: Stream) => {
    try {
      const lp = lpStream(stream)
      await lp.write(answer(decodeRequest((await lp.read({ signal: AbortSignal.timeout(2000) })).subarray())))
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  const head = master.ledger.signedHead!
  const [entry] = await master.ledger.store.range(10, 1)
  const [other] = await master.ledger.store.range(11, 1)
  const path = master.ledger.tree.inclusionProof(9, head.seq)

  answer = () => encodeResponse({ entries: [], more: false, head, proof: { size: head.seq, hashes: path, entry } })
  t.equal((await sync.prove(liar.address, { seq: 10 })).proof.entry?.seq, 10, 'the honest answer, relayed by anyone, verifies')

  answer = () => encodeResponse({ entries: [], more: false, head, proof: { size: head.seq, hashes: path, entry: { ...other, seq: 10, policyText: undefined } } })
  await t.rejects(sync.prove(liar.address, { seq: 10 }), /does not verify/, 'another entry in its place')
  answer = () => encodeResponse({ entries: [], more: false, head, proof: { size: head.seq, hashes: [...path.slice(1), randomBytes(32)], entry } })
  await t.rejects(sync.prove(liar.address, { seq: 10 }), /does not verify/, 'a tampered path')
  const forged = signHead({ seq: head.seq, hash: head.hash, root: randomBytes(32).toString('hex') }, new Ed25519Signer(randomBytes(32)), head.origin)
  answer = () => encodeResponse({ entries: [], more: false, head: forged, proof: { size: head.seq, hashes: path, entry } })
  await t.rejects(sync.prove(liar.address, { seq: 10 }), /not signed by the trusted master key/, 'a head no trusted master signed')
  answer = () => encodeResponse({ entries: [], more: false, head: { ...head, seq: head.seq + 1 }, proof: { size: head.seq, hashes: path, entry } })
  await t.rejects(sync.prove(liar.address, { seq: 10 }), /signed head|tree of/, 'a head of another size')
  answer = () => encodeResponse({ entries: [], more: false, head })
  await t.rejects(sync.prove(liar.address, { seq: 10 }), /answered without a proof/, 'no proof at all (a node that predates proofs)')
})
