import protobuf from 'protobufjs'
import { LedgerMeshError, errorMessage } from '../../base/errors.js'
import { canonicalJson } from '../../policies/canonical.js'
import { MAX_POLICY_BYTES, type Policy } from '../../policies/policy.js'
import { type Entry, GENESIS_HASH } from '../../ledger/entry.js'
import type { SignedHead } from '../../ledger/head.js'
import { SYNC_ERROR, WIRE_VERSION } from './constants.js'
import { boundedString, decodeWire, fixedHex, hexBytes, malformed } from '../../net/wire.js'
import { signedHeadToWire, signedHeadFromWire } from '../signed-head.js'
import {
  ProofAnswerType, SyncRequestType, SyncResponseType, TO_OBJECT, WireEntryType, WireHeadType,
  type WireEntry, type WireSyncRequest, type WireSyncResponse
} from './messages.js'

/**
 * Between the sync messages on the wire and the ledger's own types. Decoders accept any bytes
 * and either return a well-formed message or throw LedgerMeshError('bad_message'): every seq a
 * safe integer, every hash 32 bytes, every policy a JSON object in valid UTF-8. Whether the
 * content is *true* (links, signatures, policies) is checked later, by the client and the
 * Ledger.
 */

export interface SyncRequest {
  version: number
  afterSeq: number
  /** hex; GENESIS_HASH when afterSeq is 0 */
  afterHash: string
  limit: number
  watch: boolean
  /** the client would send its next request on this stream (a session; see SyncResponse.open) */
  keepOpen?: boolean
  /** the client holds a master-signed head at exactly afterSeq/afterHash (see SyncResponse.currentSeq) */
  holdsHead?: boolean
  /** instead of entries: an inclusion proof (seq > 0) or a consistency proof from `first`, in (to) the tree of `size` (0: the checkpoint's) */
  prove?: ProofQuery
}

export interface ProofQuery { seq: number, first: number, size: number }

/** A proof as a sync answer carries it (beside the server's signed head). */
export interface ProofAnswer {
  size: number
  hashes: Buffer[]
  /** an inclusion proof's entry */
  entry?: Entry
}

export interface SyncError {
  /** one of SYNC_ERROR's codes (a newer peer may send others) */
  code: string
  message: string
}

/** What ends a run besides its entries: the head, or that the client's is still current, and whether the stream stays open. */
interface RunEnd {
  /** on the frame that ends a run: the server reads another request on this stream */
  open?: boolean
  /** instead of a head: the signed head the client said it holds is still the server's, at this seq (> 0) */
  currentSeq?: number
  /** the answer to a request's `prove` */
  proof?: ProofAnswer
}

export interface SyncResponse extends RunEnd {
  entries: Entry[]
  head?: SignedHead
  more: boolean
  error?: SyncError
}

/** A response whose entries are already encoded (WireEntry bytes): what a server builds frames from. */
export interface EncodedResponse extends RunEnd {
  entries: Uint8Array[]
  head?: SignedHead
  more: boolean
  error?: SyncError
}

const HASH_BYTES = 32
const MAX_ERROR_CODE_CHARS = 64
const MAX_ERROR_MESSAGE_CHARS = 4096

const utf8 = new TextDecoder('utf-8', { fatal: true })

function seqOf (value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw malformed(what, `seq ${String(value)} is not a safe non-negative integer`)
  }
  return value
}

/** Size of a varint, as protobuf and the length prefix write it. */
export function varintSize (value: number): number {
  let size = 1
  while (value >= 0x80) { value = Math.floor(value / 0x80); size++ }
  return size
}

// ---- requests ----

export function encodeRequest (req: SyncRequest): Uint8Array {
  return SyncRequestType.encode(SyncRequestType.fromObject({
    version: req.version,
    after_seq: req.afterSeq,
    after_hash: hexBytes(req.afterHash),
    limit: req.limit,
    watch: req.watch,
    keep_open: req.keepOpen === true,
    holds_head: req.holdsHead === true,
    ...(req.prove !== undefined ? { prove: req.prove } : {})
  })).finish()
}

/**
 * A request of another wire version throws bad_message with `details.syncError` set to
 * `unsupported_version`, before its other fields are looked at (they may mean other things).
 */
export function decodeRequest (data: Uint8Array): SyncRequest {
  const o = decodeWire<WireSyncRequest>(SyncRequestType, data, 'sync request', TO_OBJECT)
  if (o.version !== WIRE_VERSION) {
    throw new LedgerMeshError('bad_message', `sync wire version ${o.version} is not supported (this node speaks ${WIRE_VERSION})`,
      { syncError: SYNC_ERROR.unsupportedVersion, version: o.version })
  }
  const afterSeq = seqOf(o.after_seq, 'sync request')
  const afterHash = afterSeq === 0 && o.after_hash.byteLength === 0
    ? GENESIS_HASH
    : fixedHex(o.after_hash, HASH_BYTES, 'sync request after_hash')
  const prove = o.prove === undefined || o.prove === null
    ? undefined
    : { seq: seqOf(o.prove.seq, 'sync proof request'), first: seqOf(o.prove.first, 'sync proof request'), size: seqOf(o.prove.size, 'sync proof request') }
  return { version: o.version, afterSeq, afterHash, limit: o.limit, watch: o.watch, keepOpen: o.keep_open, holdsHead: o.holds_head && afterSeq > 0, ...(prove !== undefined ? { prove } : {}) }
}

// ---- responses ----

/** One entry as WireEntry bytes, ready to go into frames. */
export function encodeEntry (entry: Entry): Uint8Array {
  return WireEntryType.encode(WireEntryType.fromObject({
    seq: entry.seq,
    op: entry.op === 'put' ? 'PUT' : 'DELETE',
    policy: Buffer.from(entry.policyText ?? canonicalJson(entry.policy), 'utf8'),
    prev_hash: hexBytes(entry.prevHash),
    hash: hexBytes(entry.hash)
  })).finish()
}

function encodeHead (head: SignedHead): Uint8Array {
  return WireHeadType.encode(WireHeadType.fromObject(signedHeadToWire(head))).finish()
}

const RESPONSE_FIELDS = SyncResponseType.fields
const LENGTH_DELIMITED = 2
const VARINT = 0
const tag = (field: protobuf.Field, wireType: number): number => ((field.id << 3) | wireType) >>> 0

/** Bytes an encoded entry takes inside a SyncResponse (its field tag, length and body). */
export function entryFrameSize (encoded: Uint8Array): number {
  return varintSize(tag(RESPONSE_FIELDS.entries, LENGTH_DELIMITED)) + varintSize(encoded.byteLength) + encoded.byteLength
}

/**
 * A SyncResponse from entries encoded once (a server sends the same bytes it measured to
 * split frames). Field numbers come from the parsed .proto, so SYNC_PROTO stays the one
 * definition; the bytes are what `SyncResponseType.encode` writes for the same message.
 */
export function encodeFrame (res: EncodedResponse): Uint8Array {
  const w = protobuf.Writer.create()
  for (const entry of res.entries) w.uint32(tag(RESPONSE_FIELDS.entries, LENGTH_DELIMITED)).bytes(entry)
  if (res.head !== undefined) w.uint32(tag(RESPONSE_FIELDS.head, LENGTH_DELIMITED)).bytes(encodeHead(res.head))
  if (res.more) w.uint32(tag(RESPONSE_FIELDS.more, VARINT)).bool(true)
  // proto3 leaves empty strings out
  if (res.error !== undefined && res.error.code !== '') w.uint32(tag(RESPONSE_FIELDS.error_code, LENGTH_DELIMITED)).string(res.error.code)
  if (res.error !== undefined && res.error.message !== '') {
    w.uint32(tag(RESPONSE_FIELDS.error_message, LENGTH_DELIMITED)).string(res.error.message.slice(0, MAX_ERROR_MESSAGE_CHARS))
  }
  if (res.open === true) w.uint32(tag(RESPONSE_FIELDS.open, VARINT)).bool(true)
  if (res.currentSeq !== undefined && res.currentSeq > 0) w.uint32(tag(RESPONSE_FIELDS.current_seq, VARINT)).uint64(res.currentSeq)
  if (res.proof !== undefined) w.uint32(tag(RESPONSE_FIELDS.proof, LENGTH_DELIMITED)).bytes(encodeProofAnswer(res.proof))
  return w.finish()
}

const PROOF_FIELDS = ProofAnswerType.fields

function encodeProofAnswer (proof: ProofAnswer): Uint8Array {
  const w = protobuf.Writer.create()
  if (proof.size > 0) w.uint32(tag(PROOF_FIELDS.size, VARINT)).uint64(proof.size)
  for (const hash of proof.hashes) w.uint32(tag(PROOF_FIELDS.hashes, LENGTH_DELIMITED)).bytes(hash)
  if (proof.entry !== undefined) w.uint32(tag(PROOF_FIELDS.entry, LENGTH_DELIMITED)).bytes(encodeEntry(proof.entry))
  return w.finish()
}

export function encodeResponse (res: SyncResponse): Uint8Array {
  return encodeFrame({ ...res, entries: res.entries.map(encodeEntry) })
}

/** The policy and its text (kept for the chain check: see Entry.policyText). */
function decodePolicy (bytes: Uint8Array, seq: number): { policy: Policy, text: string } {
  if (bytes.byteLength > MAX_POLICY_BYTES) throw malformed(`sync entry ${seq}`, `policy of ${bytes.byteLength} bytes is over the ${MAX_POLICY_BYTES}-byte limit`)
  let value: unknown
  let text: string
  try {
    text = utf8.decode(bytes)
    value = JSON.parse(text)
  } catch (err) {
    throw malformed(`sync entry ${seq}`, `policy is not UTF-8 JSON: ${errorMessage(err)}`)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw malformed(`sync entry ${seq}`, 'policy is not a JSON object')
  return { policy: value as Policy, text }
}

function decodeEntry (e: WireEntry): Entry {
  const seq = seqOf(e.seq, 'sync entry')
  if (seq === 0) throw malformed('sync entry', 'seq 0 holds no entry')
  if (e.op !== 'PUT' && e.op !== 'DELETE') throw malformed(`sync entry ${seq}`, `unknown op ${String(e.op)}`)
  const { policy, text } = decodePolicy(e.policy, seq)
  return {
    seq,
    op: e.op === 'PUT' ? 'put' : 'delete',
    policy,
    prevHash: fixedHex(e.prev_hash, HASH_BYTES, `sync entry ${seq} prev_hash`),
    hash: fixedHex(e.hash, HASH_BYTES, `sync entry ${seq} hash`),
    policyText: text
  }
}

export function decodeResponse (data: Uint8Array): SyncResponse {
  const o = decodeWire<WireSyncResponse>(SyncResponseType, data, 'sync response', TO_OBJECT)
  const code = boundedString(o.error_code, MAX_ERROR_CODE_CHARS, 'sync response error_code')
  const message = boundedString(o.error_message, MAX_ERROR_MESSAGE_CHARS, 'sync response error_message')
  const currentSeq = seqOf(o.current_seq, 'sync response current_seq')
  const head = o.head !== undefined && o.head !== null ? signedHeadFromWire(o.head, 'signed head') : undefined
  if (currentSeq > 0 && (head !== undefined || o.entries.length > 0 || o.more)) {
    throw malformed('sync response', 'current_seq comes alone, without entries, a head or more')
  }
  const proof = o.proof === undefined || o.proof === null ? undefined : decodeProofAnswer(o.proof)
  return {
    entries: o.entries.map(decodeEntry),
    ...(head !== undefined ? { head } : {}),
    ...(proof !== undefined ? { proof } : {}),
    more: o.more,
    ...(code !== '' ? { error: { code, message } } : {}),
    ...(o.open ? { open: true } : {}),
    ...(currentSeq > 0 ? { currentSeq } : {})
  }
}

/** At most this many hashes in a proof: enough for any tree a uint64 size can name. */
const MAX_PROOF_HASHES = 64

function decodeProofAnswer (p: NonNullable<WireSyncResponse['proof']>): ProofAnswer {
  const size = seqOf(p.size, 'sync proof answer size')
  if (p.hashes.length > MAX_PROOF_HASHES) throw malformed('sync proof answer', `more than ${MAX_PROOF_HASHES} hashes`)
  const hashes = p.hashes.map((h, i) => Buffer.from(fixedHex(h, HASH_BYTES, `sync proof answer hash ${i}`), 'hex'))
  return { size, hashes, ...(p.entry !== undefined && p.entry !== null ? { entry: decodeEntry(p.entry) } : {}) }
}
