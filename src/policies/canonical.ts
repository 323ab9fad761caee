import { createHash } from 'node:crypto'
import canonicalize from 'canonicalize'

/**
 * RFC 8785 (JCS) canonical JSON. Every hash and signature in ledgermesh is taken over this
 * form, so two nodes that hold the same content always agree on its bytes.
 */
export function canonicalJson (value: unknown): string {
  const text = canonicalize(value)
  if (text === undefined) {
    throw new TypeError('value has no canonical JSON form')
  }
  return text
}

export function sha256Hex (data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex')
}
