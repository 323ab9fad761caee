import t from 'tap'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import {
  SYNC_PROTOCOL, WIRE_VERSION, decodeRequest, decodeResponse, encodeRequest, encodeResponse,
  type SyncRequest, type SyncResponse
} from '../src/protocols/sync/index.js'
import { type LedgerPeer, insertProbes, ledgerPeer, probe, startSync, until } from './helpers/libp2p.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

type Test = Parameters<typeof ledgerPeer>[0]

/** What a round that finds nothing new may cost on the wire (TCP payload both ways: noise, yamux, the frames). */
const UNCHANGED_ROUND_BYTES = 256

/** `peer` through a byte-counting proxy (the peer id is still checked by noise). */
async function viaProxy (t: Test, peer: LedgerPeer): Promise<{ proxy: TcpProxy, address: ReturnType<typeof multiaddr> }> {
  const port = Number(peer.address.toString().split('/tcp/')[1].split('/')[0])
  const proxy = new TcpProxy({ host: '127.0.0.1', port })
  await proxy.start()
  t.teardown(async () => { await proxy.stop() })
  return { proxy, address: multiaddr(`/ip4/127.0.0.1/tcp/${proxy.port}/p2p/${peer.libp2p.peerId.toString()}`) }
}

/** A source serving sync by hand: `answer` turns each request on a stream into frames; the stream is then closed. */
async function handSource (t: Test): Promise<LedgerPeer & { requests: SyncRequest[], answer: (req: SyncRequest) => Array<Partial<SyncResponse>> }> {
  const peer = await ledgerPeer(t)
  const source = Object.assign(peer, { requests: [] as SyncRequest[], answer: (_req: SyncRequest): Array<Partial<SyncResponse>> => [] })
  await peer.libp2p.handle(SYNC_PROTOCOL, async (stream: Stream) => {
    try {
      const lp = lpStream(stream)
      const request = decodeRequest((await lp.read({ signal: AbortSignal.timeout(2000) })).subarray())
      source.requests.push(request)
      for (const res of source.answer(request)) await lp.write(encodeResponse({ entries: [], more: false, ...res }))
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  return source
}

t.test('a round on a kept session stream', async t => {
  const master = await ledgerPeer(t, { master: true })
  const masterSync = await startSync(t, master)
  await insertProbes(master.ledger, 200)
  const replica = await ledgerPeer(t)
  const sync = await startSync(t, replica)
  const { proxy, address } = await viaProxy(t, master)
  t.equal((await sync.pull(address)).applied, 200, 'caught up')

  await t.test(`a round that finds nothing new costs under ${UNCHANGED_ROUND_BYTES} bytes on the wire`, async t => {
    await sync.pull(address) // the session stream is open from here on
    const rounds = 10
    const before = proxy.bytes
    for (let i = 0; i < rounds; i++) {
      const result = await sync.pull(address)
      t.match(result, { applied: 0, requests: 1 }, `round ${i + 1}: nothing applied, one request`)
    }
    // let any trailing frame (a window update) arrive before counting
    await new Promise(resolve => setTimeout(resolve, 100))
    const perRound = (proxy.bytes - before) / rounds
    t.comment(`an unchanged round: ${perRound} bytes on the wire`)
    t.ok(perRound < UNCHANGED_ROUND_BYTES, `${perRound} bytes per round`)
    t.equal(masterSync.servingStreams, 1, 'every round went on the one session stream')
    t.same(replica.ledger.signedHead, master.ledger.signedHead, 'the replica holds the master\'s signed head')
  })

  await t.test('a replica behind by one entry learns of it in one round', async t => {
    await master.ledger.submit({ op: 'put', policy: probe('one-more') })
    const before = proxy.bytes
    const result = await sync.pull(address)
    t.match(result, { applied: 1, requests: 1 }, 'one round, one entry')
    t.same(replica.ledger.signedHead, master.ledger.signedHead, 'and the new signed head, verified')
    t.comment(`a round that brings one entry: ${proxy.bytes - before} bytes on the wire`)
    t.match(await sync.pull(address), { applied: 0, requests: 1 }, 'then it is current again')
  })

  await t.test('a session the source closes when idle is replaced by a new stream', async t => {
    const other = await ledgerPeer(t, { master: true })
    const otherSync = await startSync(t, other, { sessionIdleMs: 150 })
    await insertProbes(other.ledger, 3)
    const r = await ledgerPeer(t)
    const rSync = await startSync(t, r)
    t.equal((await rSync.pull(other.address)).applied, 3)
    t.equal(otherSync.servingStreams, 1, 'the session is kept open')
    t.ok(await until(() => otherSync.servingStreams === 0, 3000), 'and closed by the source once idle')
    await other.ledger.submit({ op: 'put', policy: probe('after-idle') })
    t.match(await rSync.pull(other.address), { applied: 1, requests: 1 }, 'the next round opens a new one')
    t.equal(rSync.stats.rejected, 0)
  })

  await t.test('the server checks every request of a session: a diverged head is still told', async t => {
    const stream = await replica.libp2p.dialProtocol(master.address, SYNC_PROTOCOL)
    const lp = lpStream(stream)
    const head = master.ledger.signedHead!
    await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: head.seq, afterHash: head.hash, limit: 10, watch: false, keepOpen: true, holdsHead: true }))
    const current = decodeResponse((await lp.read({ signal: AbortSignal.timeout(2000) })).subarray())
    t.match(current, { entries: [], open: true, currentSeq: head.seq }, 'a client that holds the head is told it is current')
    t.equal(current.head, undefined, 'without the head again')
    await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: head.seq, afterHash: 'ab'.repeat(32), limit: 10, watch: false, keepOpen: true, holdsHead: true }))
    const diverged = decodeResponse((await lp.read({ signal: AbortSignal.timeout(2000) })).subarray())
    t.match(diverged, { error: { code: 'diverged' }, head: { seq: head.seq } }, 'a head not on the chain is diverged, with the signed head')
    t.equal(diverged.currentSeq, undefined)
    stream.abort(new Error('done'))
  })

  await t.test('a client without the new fields gets the head and a stream that closes (wire version 1 as before)', async t => {
    const stream = await replica.libp2p.dialProtocol(master.address, SYNC_PROTOCOL)
    const lp = lpStream(stream)
    const head = master.ledger.signedHead!
    await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: head.seq, afterHash: head.hash, limit: 10, watch: false }))
    const res = decodeResponse((await lp.read({ signal: AbortSignal.timeout(2000) })).subarray())
    t.same(res.head, head, 'the signed head, as before')
    t.equal(res.open, undefined)
    t.equal(res.currentSeq, undefined)
    await t.rejects(lp.read({ signal: AbortSignal.timeout(2000) }), 'then the server closes the stream')
    stream.abort(new Error('done'))
  })

  await t.test('an idle watch is kept alive with short frames', async t => {
    const w = await ledgerPeer(t, { master: true })
    await startSync(t, w, { watchKeepaliveMs: 100 })
    await insertProbes(w.ledger, 2)
    const watcher = await ledgerPeer(t)
    const watcherSync = await startSync(t, watcher, { watchKeepaliveMs: 100 })
    const via = await viaProxy(t, w)
    let closed = false
    const handle = watcherSync.watch(via.address, { onApplied: () => {}, onClose: () => { closed = true } })
    t.teardown(() => { handle.close() })
    t.ok(await until(() => watcher.ledger.head.seq === 2), 'caught up')
    await new Promise(resolve => setTimeout(resolve, 150))
    const before = via.proxy.bytes
    await new Promise(resolve => setTimeout(resolve, 1000))
    const perKeepalive = (via.proxy.bytes - before) / 10
    t.comment(`about ${perKeepalive} bytes per keepalive`)
    t.ok(perKeepalive < 100, 'a keepalive costs no signed head')
    t.notOk(closed, 'the watch stays open')
    await w.ledger.submit({ op: 'put', policy: probe('pushed') })
    t.ok(await until(() => watcher.ledger.head.seq === 3), 'and still carries appends')
    t.same(watcher.ledger.signedHead, w.ledger.signedHead)
    t.equal(watcherSync.stats.rejected, 0)
  })
})

t.test('a source that does not keep sessions, or lies about being current', async t => {
  const master = await ledgerPeer(t, { master: true })
  await insertProbes(master.ledger, 3)
  const source = await handSource(t)
  const replica = await ledgerPeer(t)
  const sync = await startSync(t, replica)
  const entries = await master.ledger.store.range(1, 3)
  const head = master.ledger.signedHead!
  source.answer = req => req.afterSeq === 0 ? [{ entries, head }] : [{ head }]

  t.equal((await sync.pull(source.address)).applied, 3, 'a source that never says open: the client catches up')
  t.match(source.requests[0], { keepOpen: true, holdsHead: false }, 'a fresh replica asks to keep the stream, and holds no head')
  t.match(await sync.pull(source.address), { applied: 0, requests: 1 }, 'and the next round opens a new stream')
  t.match(source.requests[1], { afterSeq: 3, keepOpen: true, holdsHead: true }, 'holding the head now')

  source.answer = () => [{ currentSeq: 2 }]
  await t.rejects(sync.pull(source.address), { code: 'bad_message' }, 'current at another seq than the replica\'s is refused')
  t.same(replica.ledger.signedHead, head, 'the replica keeps its head')

  // a replica whose head has no signed head of its own (rewound) must get one: "current" will not do
  await replica.ledger.rewind(2)
  source.answer = () => [{ currentSeq: 2 }]
  await t.rejects(sync.pull(source.address), { code: 'bad_message' }, 'current to a replica that holds no signed head is refused')
  t.match(source.requests.at(-1), { afterSeq: 2, holdsHead: false })
  source.answer = req => [{ entries: entries.slice(req.afterSeq), head }]
  t.equal((await sync.pull(source.address)).applied, 1, 'an honest answer still applies')
  t.same(replica.ledger.signedHead, head)
})
