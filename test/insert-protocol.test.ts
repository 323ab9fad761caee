import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import {
  INSERT_PROTOCOL, WIRE_VERSION, decodeInsertResponse, encodeInsertRequest, encodeInsertResponse, type InsertResponse
} from '../src/protocols/insert/index.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { policyId } from '../src/policies/policy.js'
import { preparePolicy, prepareTombstone } from '../src/policies/prepare.js'
import { author, ledgerPeer, probe, startInsert } from './helpers/libp2p.js'
import { GENESIS_HASH } from '../src/ledger/entry.js'
import { verifyHead } from '../src/ledger/head.js'

const CONCURRENT = 100

t.test('insert protocol', async t => {
  const master = await ledgerPeer(t, { master: true })
  const serving = await startInsert(t, master)
  t.ok(serving.isServing(), 'the master serves inserts')
  const node = await ledgerPeer(t)
  const client = await startInsert(t, node)
  t.notOk(client.isServing(), 'a replica does not')

  /** One raw request on its own stream: the master's answer. */
  async function raw (bytes: Uint8Array): Promise<InsertResponse> {
    const stream = await node.libp2p.dialProtocol(master.address, INSERT_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(bytes)
    const answer = decodeInsertResponse((await lp.read({ signal: AbortSignal.timeout(3000) })).subarray())
    await stream.close()
    return answer
  }

  await t.test('a submit from a non-master node gets its seq; the policy is in the master state', async t => {
    const policy = probe('first')
    const result = await client.submit(master.address, { op: 'put', policy })
    t.same(result, { seq: 1, id: policyId(policy), link: { prevHash: GENESIS_HASH, hash: master.ledger.head.hash }, head: master.ledger.signedHead })
    t.ok(verifyHead(result.head!, master.ledger.masterKey!), "the answer's head is signed by the master: a replica may apply the entry at once")
    t.same(master.ledger.state.get(result.id), policy, 'the master holds it')
    t.equal(master.ledger.state.seqOf(result.id), 1)
    t.equal((await master.ledger.store.range(1, 1))[0].hash, master.ledger.head.hash, 'and it is durable in its store')
  })

  await t.test('consecutive submits share one stream; a stream the master dropped is replaced', async t => {
    const insertStreams = () => node.libp2p.getConnections(master.libp2p.peerId)
      .flatMap(c => c.streams).filter(s => s.protocol === INSERT_PROTOCOL && s.status === 'open')
    for (let i = 0; i < 5; i++) await client.submit(master.address, { op: 'put', policy: probe(`reuse-${i}`) })
    t.equal(insertStreams().length, 1, 'five inserts in a row, one open stream')
    // The master stops serving (its streams are reset) and starts again: the client's idle
    // stream is dead, and the next submit goes through on a new one.
    await serving.stop()
    await serving.start()
    const result = await client.submit(master.address, { op: 'put', policy: probe('after-restart') })
    t.equal(master.ledger.state.seqOf(result.id), result.seq, 'stored once, at the seq it was answered with')
    t.equal(insertStreams().length, 1, 'one open stream again')
  })

  await t.test('a delete is a signed tombstone', async t => {
    const policy = probe('to-delete')
    const put = await client.submit(master.address, { op: 'put', policy })
    const del = await client.submit(master.address, { op: 'delete', policy: prepareTombstone(put.id, author) })
    t.equal(del.seq, put.seq + 1)
    t.notOk(master.ledger.state.has(put.id), 'the policy is gone')
    await t.rejects(client.submit(master.address, { op: 'delete', policy: prepareTombstone(put.id, author) }), { code: 'not_found' })
  })

  await t.test('refusals carry the master\'s code and message', async t => {
    const head = master.ledger.head.seq
    const tampered = probe('tampered')
    tampered.probe.name = 'changed after signing'
    await t.rejects(client.submit(master.address, { op: 'put', policy: tampered }), { code: 'bad_signature', message: /does not match its content/ })
    const twoRoots = { ...probe('a'), other: probe('c').probe }
    await t.rejects(client.submit(master.address, { op: 'put', policy: twoRoots }), { code: 'bad_policy', message: /exactly one root key/ })
    const unsigned = { probe: { name: 'unsigned' } }
    await t.rejects(client.submit(master.address, { op: 'put', policy: unsigned }), { code: 'bad_policy', message: /id/ }, 'an unsigned policy')
    await t.rejects(client.submit(master.address, { op: 'put', policy: preparePolicy({ assignment: { profile: 'p', worker: 'w' } }, author) }),
      { code: 'unauthorized', message: /may not write assignment policies/ })
    const dup = probe('first')
    await t.rejects(client.submit(master.address, { op: 'put', policy: dup }), { code: 'duplicate_id', message: /already in the ledger/ })
    t.equal(master.ledger.head.seq, head, 'nothing refused was stored')
  })

  await t.test('a refusal\'s reason travels: a key not admitted yet is told apart from a refused policy', async t => {
    const refusal = { ok: false, seq: 0, id: '', errorCode: 'unauthorized', errorMessage: 'key k is not admitted to this network' }
    t.match(decodeInsertResponse(encodeInsertResponse({ ...refusal, reason: 'not_admitted' })), { ...refusal, reason: 'not_admitted' })
    t.equal(decodeInsertResponse(encodeInsertResponse(refusal)).reason, undefined, 'absent when the master gives none')
    t.equal(decodeInsertResponse(encodeInsertResponse({ ok: true, seq: 1, id: 'x', errorCode: '', errorMessage: '', reason: 'ignored' })).reason, undefined, 'an answer that is ok has none')
  })

  await t.test('bad requests on the wire', async t => {
    t.match(await raw(encodeInsertRequest({ version: WIRE_VERSION, op: 'put', policy: '{"probe": {"name": ' })),
      { ok: false, errorCode: 'bad_policy', errorMessage: /not valid JSON/ }, 'JSON that does not parse is bad_policy')
    t.match(await raw(encodeInsertRequest({ version: 7, op: 'put', policy: '{}' })),
      { ok: false, errorCode: 'unsupported_version', errorMessage: /version 7 is not supported/ })
    t.match(await raw(Uint8Array.from([0x08, 0x01, 0x10, 0x05])), { ok: false, errorCode: 'bad_message', errorMessage: /unknown op 5/ })
    t.match(await raw(new Uint8Array(50).fill(0xff)), { ok: false, errorCode: 'bad_message', errorMessage: /malformed insert request/ })
    t.match(await raw(new Uint8Array(0)), { ok: false, errorCode: 'bad_message', errorMessage: /empty/ })
  })

  await t.test(`${CONCURRENT} concurrent submits all get distinct seqs`, async t => {
    const before = master.ledger.head.seq
    const results = await Promise.all(Array.from({ length: CONCURRENT }, async (_, i) =>
      await client.submit(master.address, { op: 'put', policy: probe(`concurrent-${i}`) })))
    const seqs = new Set(results.map(r => r.seq))
    t.equal(seqs.size, CONCURRENT, 'distinct seqs')
    t.equal(Math.min(...seqs), before + 1)
    t.equal(Math.max(...seqs), before + CONCURRENT, 'no gaps')
    t.equal(master.ledger.head.seq, before + CONCURRENT)
  })

  await t.test('master_unreachable: a node that is not the master, a silent master, a stopped master', async t => {
    const replica = await ledgerPeer(t)
    await startInsert(t, replica)
    await t.rejects(client.submit(replica.address, { op: 'put', policy: probe('to-a-replica') }), { code: 'master_unreachable' }, 'a replica does not take inserts')

    const silent = await ledgerPeer(t)
    await silent.libp2p.handle(INSERT_PROTOCOL, (_stream: Stream) => { /* never answers */ })
    const impatient = await startInsert(t, node, { timeoutMs: 500 })
    const started = Date.now()
    // the 500 ms cover the dial too: on a loaded machine the deadline may already pass while dialling
    await t.rejects(impatient.submit(silent.address, { op: 'put', policy: probe('to-silence') }), { code: 'master_unreachable', message: /did not answer: no answer within 500 ms|cannot reach the master at .*aborted due to timeout/ })
    t.ok(Date.now() - started < 2000, 'within its timeout')

    const gone = await ledgerPeer(t, { master: true })
    const goneAddress = gone.address
    await gone.host.stop()
    await t.rejects(client.submit(goneAddress, { op: 'put', policy: probe('late') }), { code: 'master_unreachable', message: /cannot reach the master/ })
  })

  await t.test('a stalled client is answered `timeout` and the master keeps serving', async t => {
    const quick = await ledgerPeer(t, { master: true })
    await startInsert(t, quick, { timeoutMs: 300 })
    const stream = await node.libp2p.dialProtocol(quick.address, INSERT_PROTOCOL)
    const answer = decodeInsertResponse((await lpStream(stream).read({ signal: AbortSignal.timeout(3000) })).subarray())
    t.match(answer, { ok: false, errorCode: 'timeout' })
    const other = new Ed25519Signer(randomBytes(32))
    t.match(await client.submit(quick.address, { op: 'put', policy: probe('after-stall', other) }), { seq: 1 })
  })
})
