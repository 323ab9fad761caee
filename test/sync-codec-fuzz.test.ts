import t from 'tap'
import fc from 'fast-check'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { lpStream } from '@libp2p/utils'
import {
  SYNC_PROTOCOL, SyncResponseType, WireEntryType, WIRE_VERSION, decodeRequest, decodeResponse, encodeEntry,
  encodeFrame, encodeRequest, encodeResponse, type SyncResponse
} from '../src/protocols/sync/index.js'
import { deadlineSignal } from '../src/net/deadline.js'
import { INSERT_PROTOCOL, decodeInsertRequest, decodeInsertResponse } from '../src/protocols/insert/index.js'
import { LedgerMeshError } from '../src/base/errors.js'
import { canonicalJson } from '../src/policies/canonical.js'
import type { Entry } from '../src/ledger/entry.js'
import type { SignedHead } from '../src/ledger/head.js'
import { insertProbes, ledgerPeer, startInsert, startSync } from './helpers/libp2p.js'

const RUNS = process.env.TORTURE === '1' ? 100_000 : 3000
const LIVE_RUNS = process.env.TORTURE === '1' ? 2000 : Number(process.env.LIVE_RUNS ?? 120)

/** A decoder's contract: a message, or LedgerMeshError('bad_message'); never anything else. */
function total (decode: (bytes: Uint8Array) => unknown): (bytes: Uint8Array) => boolean {
  return bytes => {
    try {
      decode(bytes)
      return true
    } catch (err) {
      if (err instanceof LedgerMeshError && err.code === 'bad_message') return true
      throw err
    }
  }
}

const hex = (bytes: number): fc.Arbitrary<string> => fc.uint8Array({ minLength: bytes, maxLength: bytes }).map(b => Buffer.from(b).toString('hex'))
const seq = fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })
const policy = fc.record({ probe: fc.record({ name: fc.string(), n: fc.integer(), tags: fc.array(fc.string(), { maxLength: 3 }) }) })
const entry: fc.Arbitrary<Entry> = fc.record({ seq, op: fc.constantFrom('put' as const, 'delete' as const), policy, prevHash: hex(32), hash: hex(32) })
const head: fc.Arbitrary<SignedHead> = fc.record({ seq: fc.nat({ max: Number.MAX_SAFE_INTEGER }), hash: hex(32), time: fc.date({ noInvalidDate: true }).map(d => d.toISOString()), publicKey: hex(32), signature: hex(64), root: hex(32), origin: fc.string({ maxLength: 100 }) })
const response: fc.Arbitrary<SyncResponse> = fc.record({
  entries: fc.array(entry, { maxLength: 4 }),
  head: fc.option(head, { nil: undefined }),
  more: fc.boolean(),
  error: fc.option(fc.record({ code: fc.constantFrom('diverged', 'bad_message', 'timeout'), message: fc.string() }), { nil: undefined })
}).map(r => {
  // optional fields are absent, not undefined, in decoded messages
  const out: SyncResponse = { entries: r.entries, more: r.more }
  if (r.head !== undefined) out.head = r.head
  if (r.error !== undefined) out.error = r.error
  return out
})

t.test('decoders: arbitrary bytes give a valid message or bad_message, nothing else', async t => {
  for (const [name, decode] of [
    ['sync request', decodeRequest], ['sync response', decodeResponse],
    ['insert request', decodeInsertRequest], ['insert response', decodeInsertResponse]
  ] as const) {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 400 }), total(decode)), { numRuns: RUNS })
    t.pass(`${name}: ${RUNS} random frames`)
  }
})

t.test('decoders: mutated valid frames give a valid message or bad_message', async t => {
  const mutated = (base: fc.Arbitrary<Uint8Array>): fc.Arbitrary<Uint8Array> => fc.tuple(base, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 1, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat())
    .map(([bytes, flips, cut]) => {
      const copy = Uint8Array.from(bytes)
      for (const [at, xor] of flips) if (copy.length > 0) copy[at % copy.length] ^= xor
      return cut % 3 === 0 ? copy.subarray(0, cut % (copy.length + 1)) : copy
    })
  fc.assert(fc.property(mutated(response.map(encodeResponse)), total(decodeResponse)), { numRuns: RUNS })
  const request = fc.record({ version: fc.constant(WIRE_VERSION), afterSeq: seq, afterHash: hex(32), limit: fc.nat(), watch: fc.boolean() })
  fc.assert(fc.property(mutated(request.map(encodeRequest)), total(decodeRequest)), { numRuns: RUNS })
  t.pass(`${RUNS} mutated responses and requests`)
})

/** A decoded response without the policy texts it keeps for the chain check. */
const withoutText = (res: SyncResponse): SyncResponse => ({ ...res, entries: res.entries.map(({ policyText: _text, ...entry }) => entry) })

t.test('codec round trip, and frames built from pre-encoded entries match protobufjs', async t => {
  fc.assert(fc.property(response, res => {
    const bytes = encodeResponse(res)
    const reflected = SyncResponseType.encode(SyncResponseType.fromObject({
      entries: res.entries.map(e => WireEntryType.toObject(WireEntryType.decode(encodeEntry(e)))),
      ...(res.head !== undefined
        ? { head: { seq: res.head.seq, hash: Buffer.from(res.head.hash, 'hex'), time: res.head.time, public_key: Buffer.from(res.head.publicKey, 'hex'), signature: Buffer.from(res.head.signature, 'hex'), root: Buffer.from(res.head.root, 'hex'), origin: res.head.origin } }
        : {}),
      more: res.more,
      error_code: res.error?.code ?? '',
      error_message: res.error?.message ?? ''
    })).finish()
    return Buffer.from(bytes).equals(Buffer.from(reflected)) &&
      Buffer.from(encodeFrame({ ...res, entries: res.entries.map(encodeEntry) })).equals(Buffer.from(bytes)) &&
      canonicalJson(withoutText(decodeResponse(bytes))) === canonicalJson(res) &&
      decodeResponse(bytes).entries.every(e => e.policyText === canonicalJson(e.policy))
  }), { numRuns: 500 })
  t.pass('500 responses: encode → decode is the identity; the bytes are what SyncResponseType.encode writes')
  // uint64 seqs survive up to 2^53 - 1; a larger one on the wire is refused, not rounded
  const big = SyncResponseType.encode(SyncResponseType.fromObject({ head: { seq: '9007199254740993', hash: Buffer.alloc(32), time: 't', public_key: Buffer.alloc(32), signature: Buffer.alloc(64) } })).finish()
  t.throws(() => decodeResponse(big), { code: 'bad_message', message: /not a safe non-negative integer/ })
})

t.test('live servers: arbitrary bytes on a stream get an error frame or a closed stream, never a hang', async t => {
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  t.teardown(() => { process.off('unhandledRejection', onUnhandled) })

  const master = await ledgerPeer(t, { master: true })
  // short timeouts: a partial frame that is never finished is answered when they expire
  const sync = await startSync(t, master, { timeoutMs: 150 })
  await startInsert(t, master, { timeoutMs: 150 })
  await insertProbes(master.ledger, 3)
  const client = await ledgerPeer(t)

  let frames = 0
  let closed = 0
  for (const protocol of [SYNC_PROTOCOL, INSERT_PROTOCOL]) {
    await fc.assert(fc.asyncProperty(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 3 }), async (bytes, mode) => {
      const halfClose = mode !== 0
      const stream = await client.libp2p.dialProtocol(master.address, protocol)
      if (bytes.length > 0) stream.send(bytes)
      // Half-closing ends the request at once; otherwise a partial frame waits for the server's timeout.
      if (halfClose || bytes.length === 0) await stream.close()
      const lp = lpStream(stream)
      const started = Date.now()
      try {
        const answer = (await lp.read({ signal: AbortSignal.timeout(3000) })).subarray()
        if (protocol === SYNC_PROTOCOL) decodeResponse(answer)
        else decodeInsertResponse(answer)
        frames++
      } catch (err) {
        if (err instanceof Error && err.name === 'TimeoutError') throw new Error(`no answer and no close after ${Date.now() - started} ms`)
        if (err instanceof LedgerMeshError) throw err // an answer that does not decode
        closed++
      } finally {
        stream.abort(new Error('done'))
      }
    }), { numRuns: protocol === SYNC_PROTOCOL ? LIVE_RUNS : Math.ceil(LIVE_RUNS / 3) })
  }
  t.ok(frames > 0, `${frames} answered with a frame, ${closed} with a closed stream`)

  const replica = await ledgerPeer(t)
  const replicaSync = await startSync(t, replica)
  t.equal((await replicaSync.pull(master.address)).applied, 3, 'the server still serves')
  t.ok(sync.stats.bytesIn > 0)
  t.same(unhandled, [], 'no unhandled rejection')
})

t.test('a stalled peer is answered even when the garbage collector runs meanwhile', async t => {
  // Node 20: AbortSignal.any([AbortSignal.timeout(ms)]) never fires once the timeout signal is
  // collected. deadlineSignal keeps it alive.
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const fired = await new Promise<boolean>(resolve => {
    const signal = deadlineSignal(50)
    signal.addEventListener('abort', () => { resolve(true) })
    setTimeout(gc, 10)
    setTimeout(() => { resolve(false) }, 500)
  })
  t.ok(fired, 'deadlineSignal fires after a collection')

  const master = await ledgerPeer(t, { master: true })
  await startSync(t, master, { timeoutMs: 200 })
  const client = await ledgerPeer(t)
  const stream = await client.libp2p.dialProtocol(master.address, SYNC_PROTOCOL)
  stream.send(Uint8Array.from([0xf1, 0x85, 0x0d, 0x36])) // a length prefix of 213,745 bytes, and one byte of them
  setTimeout(gc, 50)
  const answer = decodeResponse((await lpStream(stream).read({ signal: AbortSignal.timeout(3000) })).subarray())
  t.match(answer.error, { code: 'timeout', message: /no sync request within 200 ms/ })
})
