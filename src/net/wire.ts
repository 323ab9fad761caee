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
