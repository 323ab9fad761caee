import t from 'tap'
import fc from 'fast-check'
import { randomBytes } from 'node:crypto'
import { lpStream } from '@libp2p/utils'
import { SyncProtocol, SYNC_PROTOCOL, decodeRequest, decodeResponse, encodeRequest } from '../src/protocols/sync/index.js'
import { InsertProtocol, INSERT_PROTOCOL, decodeInsertRequest, decodeInsertResponse } from '../src/protocols/insert/index.js'
import { LedgerMeshError } from '../src/base/errors.js'
import { silentLogger } from '../src/base/logger.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { ledgerPeer, insertProbes } from './helpers/libp2p.js'

const log = silentLogger()
const CONCURRENT = Number(process.env.CONCURRENT ?? 50)
const RUNS = process.env.TORTURE === '1' ? 100_000 : 2000

t.test('decoders: arbitrary bytes give a valid message or bad_message, nothing else', async t => {
  for (const decode of [decodeRequest, decodeResponse, decodeInsertRequest]) {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), bytes => {
      try {
        decode(bytes)
        return true
      } catch (err) {
        return err instanceof LedgerMeshError && err.code === 'bad_message'
      }
    }), { numRuns: RUNS })
  }
  t.pass(`${RUNS} random frames per decoder`)
})

t.test('bad input on the wire gets a clean error and a closed stream; the node keeps serving', async t => {
  const master = await ledgerPeer(t, { master: true })
  const sync = new SyncProtocol({ libp2p: master.host.libp2p, ledger: master.ledger, log }, { timeoutMs: 1000 })
  const insert = new InsertProtocol({ libp2p: master.host.libp2p, ledger: master.ledger, log }, { timeoutMs: 1000 })
  await sync.start()
  await insert.start()
  t.teardown(async () => { await sync.stop(); await insert.stop() })
  await insertProbes(master.ledger, 3)
  const client = await ledgerPeer(t)
  const dial = async (protocol: string) => await client.host.libp2p.dialProtocol(master.address, protocol)

  // Garbage after a valid length prefix: answered with a bad_message error frame.
  {
    const stream = await dial(SYNC_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(randomBytes(64).fill(0xff))
    const answer = decodeResponse((await lp.read({ signal: AbortSignal.timeout(3000) })).subarray())
    t.equal(answer.error?.code, 'bad_message', 'garbage request')
  }
  // An unknown protocol version.
  {
    const stream = await dial(SYNC_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(encodeRequest({ version: 99, afterSeq: 0, afterHash: '', limit: 10, watch: false }))
    const answer = decodeResponse((await lp.read({ signal: AbortSignal.timeout(3000) })).subarray())
    t.equal(answer.error?.code, 'unsupported_version')
    t.match(answer.error?.message, /version 99 is not supported/)
  }
  // A length prefix far over the limit: the server aborts the stream instead of buffering.
  {
    const stream = await dial(SYNC_PROTOCOL)
    stream.send(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0x0f]))
    const lp = lpStream(stream)
    await t.rejects(lp.read({ signal: AbortSignal.timeout(3000) }), undefined, 'oversized frame: the stream is closed')
  }
  // A peer that opens a stream and stalls is cut off after the timeout.
  {
    const stream = await dial(INSERT_PROTOCOL)
    const lp = lpStream(stream)
    const answer = decodeInsertResponse((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray())
    t.match(answer, { ok: false, errorCode: 'timeout' }, 'a stalled peer is answered with a timeout once the server stops waiting')
  }
  // A sync request sent to the insert protocol is a malformed insert.
  {
    const stream = await dial(INSERT_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(randomBytes(40))
    const answer = (await lp.read({ signal: AbortSignal.timeout(3000) })).subarray()
    t.ok(answer.length > 0, 'an error answer')
  }

  // After all that the master still serves.
  const replica = await ledgerPeer(t)
  const replicaSync = new SyncProtocol({ libp2p: replica.host.libp2p, ledger: replica.ledger, log })
  t.equal((await replicaSync.pull(master.address)).applied, 3, 'sync still works')
  const clientInsert = new InsertProtocol({ libp2p: client.host.libp2p, ledger: client.ledger, log })
  const author = new Ed25519Signer(randomBytes(32))
  const accepted = await clientInsert.submit(master.address, { op: 'put', policy: preparePolicy({ probe: { name: 'after-bad-input' } }, author) })
  t.equal(accepted.seq, 4, 'inserts still work')
})

t.test('insert protocol: seqs, clear rejections, unreachable master', async t => {
  const master = await ledgerPeer(t, { master: true })
  const serving = new InsertProtocol({ libp2p: master.host.libp2p, ledger: master.ledger, log })
  await serving.start()
  t.teardown(() => serving.stop())
  const node = await ledgerPeer(t)
  const client = new InsertProtocol({ libp2p: node.host.libp2p, ledger: node.ledger, log })
  const author = new Ed25519Signer(randomBytes(32))

  const results = await Promise.all(Array.from({ length: CONCURRENT }, async (_, i) =>
    await client.submit(master.address, { op: 'put', policy: preparePolicy({ probe: { name: `c${i}` } }, author) })))
  t.equal(new Set(results.map(r => r.seq)).size, CONCURRENT, `${CONCURRENT} concurrent submits get distinct seqs`)
  t.equal(master.ledger.head.seq, 50)

  const dup = preparePolicy({ probe: { name: 'c0' } }, author)
  await t.rejects(client.submit(master.address, { op: 'put', policy: dup }), { code: 'duplicate_id' })
  const bad = preparePolicy({ worker: { name: 'w', port: 1 } }, author)
  bad.worker.port = 2
  await t.rejects(client.submit(master.address, { op: 'put', policy: bad }), { code: 'bad_signature', message: /does not match its content/ })
  await t.rejects(client.submit(master.address, { op: 'put', policy: preparePolicy({ assignment: { profile: 'p', worker: 'w' } }, author) }), { code: 'unauthorized' })
  t.equal(master.ledger.head.seq, 50, 'nothing rejected was stored')

  await serving.stop()
  await master.host.stop()
  await t.rejects(client.submit(master.address, { op: 'put', policy: preparePolicy({ probe: { name: 'late' } }, author) }), { code: 'master_unreachable' })
})
