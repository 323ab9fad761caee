import t from 'tap'
import { randomBytes } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import {
  SYNC_PROTOCOL, SyncProtocol, WIRE_VERSION, decodeRequest, decodeResponse, encodeRequest, encodeResponse,
  type PullResult, type SyncRequest, type SyncResponse
} from '../src/protocols/sync/index.js'
import { type Entry, chainEntries } from '../src/ledger/entry.js'
import { FORK_META_KEY, ForkWatch } from '../src/ledger/fork-watch.js'
import { signHead, type SignedHead } from '../src/ledger/head.js'
import { signedHeadFor } from './helpers/checkpoints.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { type LedgerPeer, insertProbes, ledgerPeer, probe, startSync, stateSnapshot, until } from './helpers/libp2p.js'

type Test = Parameters<typeof ledgerPeer>[0]

/**
 * A peer that serves /ledgermesh/sync/1.0.0 by hand: `answer` turns each request into the
 * frames to send (raw bytes, so they can be anything).
 */
async function maliciousSource (t: Test): Promise<LedgerPeer & { answer: (req: SyncRequest) => Uint8Array[] }> {
  const peer = await ledgerPeer(t)
  const evil = Object.assign(peer, { answer: (_req: SyncRequest): Uint8Array[] => [] })
  await peer.libp2p.handle(SYNC_PROTOCOL, async (stream: Stream) => {
    try {
      const lp = lpStream(stream)
      const request = decodeRequest((await lp.read({ signal: AbortSignal.timeout(2000) })).subarray())
      for (const frame of evil.answer(request)) await lp.write(frame)
      await stream.close()
    } catch (err) {
      stream.abort(err as Error)
    }
  })
  return evil
}

const frame = (res: Partial<SyncResponse>): Uint8Array => encodeResponse({ entries: [], more: false, ...res })

t.test('catch-up, incremental pull, relay and watch', async t => {
  const master = await ledgerPeer(t, { master: true })
  // Small frames on the master so one response takes several.
  const masterSync = await startSync(t, master, { maxMessageBytes: 64 * 1024, watchKeepaliveMs: 200 })
  await insertProbes(master.ledger, 1000)
  t.equal(master.ledger.head.seq, 1000)

  const a = await ledgerPeer(t)
  const aSync = await startSync(t, a, { maxEntriesPerResponse: 300 })
  let first: PullResult | undefined

  await t.test('catch-up of 1,000 entries in several responses', async t => {
    const appended: Entry[] = []
    const onAppended = (entries: Entry[]): void => { appended.push(...entries) }
    a.ledger.on('appended', onAppended)
    t.teardown(() => { a.ledger.off('appended', onAppended) })
    first = await aSync.pull(master.address)
    t.equal(first.applied, 1000)
    // the run waits for the last page, which brings the signed head: what waited was hashed as
    // it came and kept without its policy text
    t.equal(appended.length, 1000)
    t.equal(appended.filter(entry => entry.policyText === undefined).length, 900, 'the 900 entries held for later pages, without their text')
    t.equal(first.requests, 4, 'four requests of at most 300 entries')
    t.same(a.ledger.head, master.ledger.head, 'replica head = master head')
    t.same(a.ledger.signedHead, master.ledger.signedHead, 'and the same signed head')
    t.same(stateSnapshot(a.ledger), stateSnapshot(master.ledger), 'same live state')
    t.equal(a.ledger.masterKey, master.signer.publicKey, 'the master key is pinned from the first signed head')
    t.equal(aSync.stats.entriesIn, 1000)
    t.equal(aSync.stats.rejected, 0)
    t.equal(masterSync.stats.entriesOut, 1000)
    t.ok(masterSync.stats.bytesOut >= first.bytesReceived, 'the master counted what it sent')
    t.comment(`catch-up of 1,000 entries: ${first.bytesReceived} bytes received in ${first.requests} requests`)

    const again = await aSync.pull(master.address)
    t.match(again, { applied: 0, requests: 1 }, 'a replica at the head gets nothing more')
  })

  await t.test('every frame stays under the server\'s message limit', async t => {
    const stream = await a.libp2p.dialProtocol(master.address, SYNC_PROTOCOL)
    const lp = lpStream(stream, { maxDataLength: 64 * 1024 })
    await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: 0, afterHash: '', limit: 10_000, watch: false }))
    const sizes: number[] = []
    let entries = 0
    for (;;) {
      const bytes = (await lp.read({ signal: AbortSignal.timeout(5000) })).subarray()
      sizes.push(bytes.byteLength)
      const res = decodeResponse(bytes)
      entries += res.entries.length
      if (res.head !== undefined) break
    }
    t.equal(entries, 1000)
    t.ok(sizes.length >= 6, `${sizes.length} frames`)
    t.ok(sizes.every(size => size <= 64 * 1024), `largest frame ${Math.max(...sizes)} bytes`)
  })

  await t.test('an incremental pull moves far fewer bytes than the catch-up', async t => {
    const before = aSync.stats.bytesIn
    await master.ledger.submit({ op: 'put', policy: probe('one-more') })
    const result = await aSync.pull(master.address)
    const delta = aSync.stats.bytesIn - before
    t.equal(result.applied, 1)
    t.equal(result.bytesReceived, delta)
    t.ok(delta * 100 < first!.bytesReceived, `one entry: ${delta} bytes; full catch-up: ${first!.bytesReceived} bytes`)
    t.comment(`incremental pull of 1 entry: ${delta} bytes`)
    t.same(a.ledger.head, master.ledger.head)
  })

  await t.test('relay: a replica pulls from another replica and still verifies', async t => {
    const b = await ledgerPeer(t)
    const bSync = await startSync(t, b)
    const viaRelay = await bSync.pull(a.address)
    t.equal(viaRelay.applied, 1001)
    t.same(b.ledger.signedHead, master.ledger.signedHead, 'the master-signed head travels through the relay')
    t.equal(b.ledger.masterKey, master.signer.publicKey)
    t.same(stateSnapshot(b.ledger), stateSnapshot(master.ledger))
  })

  await t.test('watch: an insert on the master reaches a watching replica without a pull', async t => {
    const applied: number[] = []
    let closed: { err?: Error } | undefined
    // The replica is one entry behind when the watch starts, so the watch's own catch-up pull
    // applies it and reports it: after that onApplied the watch never pulls again.
    await master.ledger.submit({ op: 'put', policy: probe('watched-0') })
    const watch = aSync.watch(master.address, { onApplied: (n) => { applied.push(n) }, onClose: (err) => { closed = { err } } })
    t.teardown(() => { watch.close() })
    t.ok(await until(() => applied.length > 0), 'the watch starts with a catch-up pull')
    t.same(applied, [1], 'which applies the entry the replica lacked')
    // This entry can only come on the watch stream, after the watch request was sent (and
    // counted in bytesOut): from here on every byte the replica sends would be a request.
    await master.ledger.submit({ op: 'put', policy: probe('watched-1') })
    t.ok(await until(() => a.ledger.head.seq === master.ledger.head.seq), 'pushed to the watching replica')
    const sentBefore = aSync.stats.bytesOut
    await master.ledger.submit({ op: 'put', policy: probe('watched-2') })
    t.ok(await until(() => a.ledger.head.seq === master.ledger.head.seq), 'the next one too')
    await insertProbes(master.ledger, 20, 'watched-burst')
    t.ok(await until(() => a.ledger.head.seq === master.ledger.head.seq), 'a burst too')
    t.same(a.ledger.head, master.ledger.head)
    t.equal(aSync.stats.bytesOut, sentBefore, 'no request was sent: the entries were pushed')
    t.equal(applied.reduce((sum, n) => sum + n, 0), 23)
    // A pull running alongside the watch is harmless: runs are applied one at a time.
    await Promise.all([insertProbes(master.ledger, 5, 'concurrent'), aSync.pull(master.address)])
    t.ok(await until(() => a.ledger.head.seq === master.ledger.head.seq))
    t.equal(aSync.stats.rejected, 0, 'no run was rejected')
    watch.close()
    t.ok(await until(() => closed !== undefined), 'onClose is called')
    t.equal(closed?.err, undefined, 'without an error when closed by us')
  })

  await t.test('watch keepalive: an idle watch stream carries the head', async t => {
    const stream = await a.libp2p.dialProtocol(master.address, SYNC_PROTOCOL)
    const lp = lpStream(stream)
    const head = master.ledger.head
    await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: head.seq, afterHash: head.hash, limit: 100, watch: true }))
    const started = Date.now()
    for (let i = 0; i < 3; i++) {
      const res = decodeResponse((await lp.read({ signal: AbortSignal.timeout(2000) })).subarray())
      t.match(res, { entries: [], head: { seq: head.seq, hash: head.hash } }, `frame ${i + 1}: the head`)
    }
    t.ok(Date.now() - started >= 300, 'keepalives are spaced by watchKeepaliveMs')
    stream.abort(new Error('done'))
  })

  await t.test('backpressure: a watch client that stops reading is cut off', async t => {
    const slow = await ledgerPeer(t, { master: true })
    const slowSync = await startSync(t, slow, { timeoutMs: 400, maxEntriesPerResponse: 12_000 })
    // ~5 MB, more than a stream's 4 MB read buffer: a pause that lands before the server's
    // ACK is undone by it (yamux then keeps granting window), so the client may buffer
    // instead of blocking the server; past 4 MB it cuts the stream itself. Either way the
    // watch ends: the server's writes block for timeoutMs, or the client's buffer overflows.
    for (let batch = 0; batch < 3; batch++) await insertProbes(slow.ledger, 4000, `heavy-${batch}`)
    const stream = await a.libp2p.dialProtocol(slow.address, SYNC_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(encodeRequest({ version: WIRE_VERSION, afterSeq: 0, afterHash: '', limit: 12_000, watch: true }))
    stream.pause() // read nothing
    let ended = false
    stream.addEventListener('close', () => { ended = true })
    t.ok(await until(() => slowSync.servingStreams === 1, 2000), 'the watch is being served')
    // bounds far above timeoutMs: on a loaded machine (tap runs files side by side) the
    // server's run and the reset can take seconds to happen
    t.ok(await until(() => slowSync.servingStreams === 0, 15_000), 'the server no longer serves the watch')
    t.ok(await until(() => ended, 15_000), 'the client sees the stream end')
    t.ok(['reset', 'aborted'].includes(stream.status), `cut off, not closed cleanly (status ${stream.status})`)
  })

  await t.test('stop() ends the watches it serves', async t => {
    let closed: { err?: Error } | undefined
    // As above: once an entry inserted after the catch-up pull has been applied, it came on the
    // watch stream, so the master is serving that stream when it stops.
    await master.ledger.submit({ op: 'put', policy: probe('before-stop-0') })
    let applied = 0
    const watch = aSync.watch(master.address, { onApplied: () => { applied++ }, onClose: (err) => { closed = { err } } })
    t.teardown(() => { watch.close() })
    t.ok(await until(() => applied === 1), 'the catch-up pull applied')
    await master.ledger.submit({ op: 'put', policy: probe('before-stop-1') })
    t.ok(await until(() => applied === 2), 'an entry pushed on the watch stream')
    t.equal(closed, undefined, 'the watch is open')
    await masterSync.stop()
    t.ok(await until(() => closed !== undefined), 'the watching replica is told')
    t.ok(closed?.err instanceof Error, `with an error: ${closed?.err?.message}`)
    await t.rejects(aSync.pull(master.address), { code: 'master_unreachable' }, 'the master no longer serves sync')
  })
})

t.test('tampered answers are rejected; the replica stays at its last valid head', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master)
  await insertProbes(master.ledger, 20)
  const replica = await ledgerPeer(t)
  const sync = await startSync(t, replica, { timeoutMs: 2000 })
  await sync.pull(master.address)
  const valid = replica.ledger.head

  await insertProbes(master.ledger, 2, 'next')
  const honest = await master.ledger.store.range(valid.seq + 1, 10)
  const head = master.ledger.signedHead!
  t.equal(honest.length, 2)
  const evil = await maliciousSource(t)
  const forger = new Ed25519Signer(randomBytes(32))

  // A single flipped byte inside a policy's JSON (a letter of its name).
  const honestFrame = frame({ entries: honest, head })
  const at = Buffer.from(honestFrame).indexOf(Buffer.from('next-'))
  const flipped = Uint8Array.from(honestFrame)
  flipped[at] ^= 0x01
  // A fork that branches two entries before the replica's head, under a head the master key signed.
  const [forkBase] = await master.ledger.store.range(valid.seq - 2, 1)
  const staleFork = chainEntries(forkBase, [{ op: 'put', policy: probe('fork-a') }, { op: 'put', policy: probe('fork-b') }, { op: 'put', policy: probe('fork-c') }])
  // A fork that links on correctly but is signed by another key.
  const otherFork = chainEntries(valid, [{ op: 'put', policy: probe('other-a') }, { op: 'put', policy: probe('other-b') }])
  // Even a head signed by the master key does not make an unauthorized entry acceptable.
  const rogue = chainEntries(valid, [{ op: 'put', policy: preparePolicy({ assignment: { profile: 'p1', worker: 'w1' } }, forger) }])
  const forgedSignature: SignedHead = { ...head, signature: signHead(head, forger, head.origin).signature }

  const cases: Array<[string, (req: SyncRequest) => Uint8Array[], { code: string, message: RegExp }]> = [
    ['a flipped byte in a policy', () => [flipped], { code: 'chain_broken', message: /hash does not match its content/ }],
    // a page held for the next one is hashed as it comes: refused then, not once the run is whole
    ['a changed policy in a page held for more', () => [frame({ entries: [{ ...honest[0], policy: probe('next-changed') }], head, more: true })], { code: 'chain_broken', message: /entry \d+ hash does not match its content/ }],
    ['a head signed by another key', () => [frame({ entries: honest, head: signHead(head, forger, head.origin) })], { code: 'bad_signature', message: /not signed by the trusted master key/ }],
    ['a forged signature under the master\'s key', () => [frame({ entries: honest, head: forgedSignature })], { code: 'bad_signature', message: /not signed by the trusted master key/ }],
    ['reordered entries', () => [frame({ entries: [honest[1], honest[0]], head })], { code: 'chain_broken', message: /does not follow/ }],
    ['a dropped entry', () => [frame({ entries: [honest[1]], head })], { code: 'chain_broken', message: /does not follow/ }],
    ['a replayed entry', () => [frame({ entries: [honest[0], honest[0], honest[1]], head })], { code: 'chain_broken', message: /does not follow/ }],
    ['a replayed entry across frames', () => [frame({ entries: [honest[0]] }), frame({ entries: [honest[0], honest[1]], head })], { code: 'chain_broken', message: /does not follow/ }],
    ['entries beyond the signed head', () => [frame({ entries: honest, head: signedHeadFor(master.ledger, [honest[0]], master.signer) })], { code: 'bad_message', message: /beyond its signed head/ }],
    ['entries short of the signed head', () => [frame({ entries: [honest[0]], head })], { code: 'bad_message', message: /short of its signed head/ }],
    ['entries and no head', () => [frame({ entries: honest }), frame({})], { code: 'bad_message', message: /no signed head/ }],
    ['entries toward a head at a made-up seq', () => [frame({ entries: honest, head: signHead({ seq: 1e12, hash: head.hash, root: head.root }, forger, head.origin), more: true })], { code: 'bad_signature', message: /not signed by the trusted master key/ }],
    ['a stale fork signed by the master key', () => [frame({ entries: staleFork, head: signedHeadFor(master.ledger, staleFork, master.signer) })], { code: 'chain_broken', message: /does not follow/ }],
    ['a fork signed by another key', () => [frame({ entries: otherFork, head: signedHeadFor(master.ledger, otherFork, forger) })], { code: 'bad_signature', message: /not signed by the trusted master key/ }],
    ['an entry its author may not write', () => [frame({ entries: rogue, head: signedHeadFor(master.ledger, rogue, master.signer) })], { code: 'unauthorized', message: /may not write assignment policies/ }],
    ['a frame that is not a sync response', () => [new Uint8Array(200).fill(0xff)], { code: 'bad_message', message: /malformed sync response/ }],
    ['a truncated hash', () => {
      const bytes = Buffer.from(frame({ entries: [honest[0]], head }))
      return [bytes.subarray(0, bytes.length - 3)]
    }, { code: 'bad_message', message: /malformed/ }],
    ['a lying "diverged" followed by a forged chain from genesis', (req) => {
      if (req.afterSeq > 0) return [frame({ error: { code: 'diverged', message: 'not on my chain' } })]
      const forged = chainEntries({ seq: 0, hash: '0'.repeat(64) }, [{ op: 'put', policy: probe('genesis-fork') }])
      return [frame({ entries: forged, head: signedHeadFor(master.ledger, forged, forger) })]
    }, { code: 'bad_signature', message: /not signed by the trusted master key/ }]
  ]
  for (const [name, answer, expected] of cases) {
    evil.answer = answer
    const before = sync.stats.rejected
    await t.rejects(sync.pull(evil.address), expected, name)
    t.same(replica.ledger.head, valid, `${name}: the replica stays at its last valid head`)
    t.ok(sync.stats.rejected > before, `${name}: counted as rejected`)
  }
  t.same(await replica.ledger.store.head(), valid, 'nothing reached the store either')

  // A watch that is pushed a forged run ends with the error; nothing is applied.
  const atValid = signHead({ ...valid, root: master.ledger.tree.root(valid.seq).toString('hex') }, master.signer, head.origin)
  evil.answer = (req) => req.watch ? [frame({ entries: honest, head: signHead(head, forger, head.origin) })] : [frame({ head: atValid })]
  const before = sync.stats.rejected
  const ended = await new Promise<Error | undefined>(resolve => {
    sync.watch(evil.address, { onApplied: () => { resolve(new Error('applied a forged run')) }, onClose: resolve })
  })
  t.match(ended, { code: 'bad_signature' }, 'a forged push ends the watch with bad_signature')
  t.equal(sync.stats.rejected, before + 1)
  t.same(replica.ledger.head, valid, 'the watching replica stays at its last valid head')

  // A source that claims divergence at every seq cannot make the replica rewind.
  evil.answer = () => [frame({ error: { code: 'diverged', message: 'no' } })]
  await t.rejects(sync.pull(evil.address), { code: 'conflict', message: /keeps answering diverged/ })
  t.same(replica.ledger.head, valid, 'a lying "diverged" does not rewind the replica')

  // A source that stalls is cut off at timeoutMs.
  const stalled = await ledgerPeer(t)
  await stalled.libp2p.handle(SYNC_PROTOCOL, () => { /* never answers */ })
  await t.rejects(sync.pull(stalled.address), { code: 'timeout' }, 'a silent source times out')

  const healed = await sync.pull(master.address)
  t.equal(healed.applied, 2, 'the replica still syncs from the honest master')
  t.same(replica.ledger.head, master.ledger.head)
})

/** Waits into the next whole second: checkpoints are signed with whole-second times. */
async function nextSecond (): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 1000 - (Date.now() % 1000) + 5))
}

t.test('a diverged replica rewinds to the last seq it shares with the master, never to an older fork', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master)
  await insertProbes(master.ledger, 5)
  const x = await ledgerPeer(t)
  const xSync = await startSync(t, x)
  await xSync.pull(master.address)

  // X's log gets a different seq 6 and 7, under a head signed by the master key (as if the
  // master had signed them and lost them in a crash); then the master orders other entries.
  const fork = chainEntries(x.ledger.head, [{ op: 'put', policy: probe('lost-6') }, { op: 'put', policy: probe('lost-7') }])
  await x.ledger.applyBatch(fork, signedHeadFor(x.ledger, fork, master.signer))
  t.equal(x.ledger.head.seq, 7)
  await nextSecond()
  await master.ledger.submit({ op: 'put', policy: probe('real-6') })

  // Y follows the master (seq 6, signed after the fork): X's fork is older, Y must not take it.
  const y = await ledgerPeer(t)
  const ySync = await startSync(t, y)
  await ySync.pull(master.address)
  const yHead = y.ledger.head
  await t.rejects(ySync.pull(x.address), { code: 'conflict', message: /not newer than this replica's/ }, 'Y refuses to rewind to an older fork')
  t.same(y.ledger.head, yHead, 'Y is unchanged')

  await insertProbes(master.ledger, 2, 'after')
  const result = await xSync.pull(master.address)
  t.same(result.recovered, { from: 7, to: 5 }, 'X rewound to seq 5, the last seq both agree on')
  t.equal(result.applied, 3)
  t.ok(result.requests >= 3, `${result.requests} requests, probes included`)
  t.same(x.ledger.head, master.ledger.head)
  t.same(stateSnapshot(x.ledger), stateSnapshot(master.ledger), 'the lost entries are gone from the state')

  // Far behind the divergence point: the probes step back 1, 2, 4, 8… then narrow down.
  const z = await ledgerPeer(t)
  const zSync = await startSync(t, z)
  await insertProbes(master.ledger, 40, 'more')
  await zSync.pull(master.address)
  const [base] = await master.ledger.store.range(12, 1)
  await z.ledger.rewind(12)
  const zFork = chainEntries(base, Array.from({ length: 30 }, (_, i) => ({ op: 'put' as const, policy: probe(`z-fork-${i}`) })))
  await z.ledger.applyBatch(zFork, signedHeadFor(z.ledger, zFork, master.signer))
  await nextSecond()
  await master.ledger.submit({ op: 'put', policy: probe('newest') })
  const zResult = await zSync.pull(master.address)
  t.same(zResult.recovered, { from: 42, to: 12 }, 'Z found seq 12 exactly')
  t.same(z.ledger.head, master.ledger.head)
})

t.test('with the node\'s fork watch, a diverged source is a fork: reported, not rewound to, and nothing more is applied', async t => {
  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master)
  await insertProbes(master.ledger, 5)
  const x = await ledgerPeer(t)
  const forks = new ForkWatch(x.ledger)
  await forks.load()
  const xSync = new SyncProtocol({ libp2p: x.libp2p, ledger: x.ledger, log: x.log, forks })
  await xSync.start()
  t.teardown(async () => { await xSync.stop() })
  await xSync.pull(master.address)

  // X holds a seq 6 under the master's key that the master later replaces (a second history)
  const fork = chainEntries(x.ledger.head, [{ op: 'put', policy: probe('lost-6') }])
  await x.ledger.applyBatch(fork, signedHeadFor(x.ledger, fork, master.signer))
  const ours = x.ledger.head
  await nextSecond()
  await insertProbes(master.ledger, 2, 'real')

  await t.rejects(xSync.pull(master.address), { code: 'fork_detected' })
  t.same(x.ledger.head, ours, 'not rewound')
  const report = forks.current!
  t.equal(report.source, 'sync')
  t.match(report.reason, /diverges from this replica's after seq 5/)
  t.match(report.checkpoints[0], /\n6\n/, 'the replica\'s own checkpoint (size 6)')
  t.match(report.checkpoints[1], /\n7\n/, 'the source\'s (size 7)')
  t.equal(await x.ledger.store.getMeta(FORK_META_KEY), JSON.stringify(report), 'kept in the store: a restart still reports it')
  await t.rejects(xSync.pull(master.address), { code: 'fork_detected' }, 'and it stays stopped')
})
