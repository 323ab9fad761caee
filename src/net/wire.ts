import type protobuf from 'protobufjs'
import { LedgerMeshError, errorMessage } from '../base/errors.js'

/**
 * What every protocol's message codec shares (insert, sync, lease): a malformed frame is
 * LedgerMeshError('bad_message') naming the message and the problem, and protobuf's own
 * decode errors become that too.
 */
export function malformed (what: string, problem: string, details: Record<string, unknown> = {}): LedgerMeshError {
  return new LedgerMeshError('bad_message', `malformed ${what}: ${problem}`, details)
}

/** Decodes `data` as `type` into a plain object, or throws `malformed`. */
export function decodeWire<T> (type: protobuf.Type, data: Uint8Array, what: string, options: protobuf.IConversionOptions): T {
  try {
    return type.toObject(type.decode(data), options) as T
  } catch (err) {
    throw malformed(what, errorMessage(err))
  }
}

/** Hex (hashes, keys, signatures) as the bytes a message carries. */
export function hexBytes (hex: string): Uint8Array {
  return Buffer.from(hex, 'hex')
}

/** A fixed-length bytes field as hex, or `malformed` when it has another length. */
export function fixedHex (value: Uint8Array, length: number, what: string): string {
  if (value.byteLength !== length) throw malformed(what, `${value.byteLength} bytes where ${length} are expected`)
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')
}

/** A string field of at most `max` characters, or `malformed`. */
export function boundedString (value: unknown, max: number, what: string): string {
  if (typeof value !== 'string' || value.length > max) throw malformed(what, `a string of at most ${max} characters is expected`)
  return value
}

/** An answer's outcome: accepted, or refused with a code and a message. */
export interface Outcome {
  ok: boolean
  /** '' when ok */
  errorCode: string
  errorMessage: string
}

const MAX_ERROR_CODE_CHARS = 64
const MAX_ERROR_MESSAGE_CHARS = 4096

/** An outcome's wire fields (`ok`, `error_code`, `error_message`); a long message is cut. */
export function encodeOutcome (res: Outcome): { ok: boolean, error_code: string, error_message: string } {
  return { ok: res.ok, error_code: res.errorCode, error_message: res.errorMessage.slice(0, MAX_ERROR_MESSAGE_CHARS) }
}

/** An outcome from its wire fields: a refusal must name its code; long codes and messages are cut. */
export function decodeOutcome (o: { ok: boolean, error_code: string, error_message: string }, what: string): Outcome {
  if (!o.ok && o.error_code === '') throw malformed(what, 'refused without an error code')
  return { ok: o.ok, errorCode: o.error_code.slice(0, MAX_ERROR_CODE_CHARS), errorMessage: o.error_message.slice(0, MAX_ERROR_MESSAGE_CHARS) }
}
