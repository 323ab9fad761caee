import type { SignedHead } from '../ledger/head.js'
import { boundedString, fixedHex, hexBytes, malformed } from '../net/wire.js'

/**
 * The master's signed head as sync and insert messages carry it (fields seq = 1, hash = 2,
 * time = 3, public_key = 4, signature = 5, root = 6, origin = 7, state_root = 8, state_size = 9
 * in both protos): to and from protobufjs's plain objects. Decoding checks the shape only; the signature is checked by
 * whoever trusts it.
 */

export interface WireSignedHead {
  seq: number
  hash: Uint8Array
  time: string
  public_key: Uint8Array
  signature: Uint8Array
  root: Uint8Array
  origin: string
  /** empty (or absent) in a head signed without a state line */
  state_root?: Uint8Array
  state_size?: number
}

const HASH_BYTES = 32
const KEY_BYTES = 32
const SIGNATURE_BYTES = 64
const MAX_TIME_CHARS = 64
const MAX_ORIGIN_CHARS = 256

const optional = <K extends string, V>(key: K, value: V | undefined): Partial<Record<K, V>> => value === undefined ? {} : { [key]: value } as Record<K, V>

export function signedHeadToWire (head: SignedHead): WireSignedHead {
  return {
    seq: head.seq,
    hash: hexBytes(head.hash),
    time: head.time,
    public_key: hexBytes(head.publicKey),
    signature: hexBytes(head.signature),
    root: hexBytes(head.root),
    origin: head.origin,
    ...(head.state === undefined ? {} : { state_root: hexBytes(head.state.root), state_size: head.state.size })
  }
}

function stateFromWire (h: WireSignedHead, what: string): SignedHead['state'] {
  if (h.state_root === undefined || h.state_root === null || h.state_root.length === 0) return undefined
  const size = h.state_size ?? 0
  if (!Number.isSafeInteger(size) || size < 0) throw malformed(what, `state_size ${String(h.state_size)} is not a safe non-negative integer`)
  return { size, root: fixedHex(h.state_root, HASH_BYTES, `${what} state_root`) }
}

/** `what` names the head in errors ("signed head", "insert response head"). */
export function signedHeadFromWire (h: WireSignedHead, what: string): SignedHead {
  if (typeof h.seq !== 'number' || !Number.isSafeInteger(h.seq) || h.seq < 0) throw malformed(what, `seq ${String(h.seq)} is not a safe non-negative integer`)
  return {
    seq: h.seq,
    hash: fixedHex(h.hash, HASH_BYTES, `${what} hash`),
    root: fixedHex(h.root, HASH_BYTES, `${what} root`),
    origin: boundedString(h.origin, MAX_ORIGIN_CHARS, `${what} origin`),
    time: boundedString(h.time, MAX_TIME_CHARS, `${what} time`),
    publicKey: fixedHex(h.public_key, KEY_BYTES, `${what} public_key`),
    signature: fixedHex(h.signature, SIGNATURE_BYTES, `${what} signature`),
    ...optional('state', stateFromWire(h, what))
  }
}
