import { isUtf8 } from 'node:buffer'
import { type ErrorCode, LedgerMeshError } from './errors.js'

/**
 * Bytes as text, refusing anything that is not valid UTF-8. Node's own decoding swaps bad bytes
 * for U+FFFD without a word, which would store or sign something the sender never wrote.
 */
export function decodeUtf8 (bytes: Uint8Array, what: string, code: ErrorCode): string {
  if (!isUtf8(bytes)) {
    throw new LedgerMeshError(code, `${what} is not valid UTF-8 (byte ${firstBadByte(bytes)}): send text in UTF-8`)
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')
}

/** Offset of the first byte that starts an invalid sequence (for the error message). */
function firstBadByte (bytes: Uint8Array): number {
  let i = 0
  while (i < bytes.length) {
    const lead = bytes[i]
    const length = lead < 0x80 ? 1 : lead >= 0xc2 && lead <= 0xdf ? 2 : lead >= 0xe0 && lead <= 0xef ? 3 : lead >= 0xf0 && lead <= 0xf4 ? 4 : 0
    if (length === 0 || !isUtf8(bytes.subarray(i, i + length))) return i
    i += length
  }
  return i
}
