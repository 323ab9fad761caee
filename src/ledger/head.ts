import { canonicalJson } from '../policies/canonical.js'
import { verifySignature, type Signer } from '../policies/keys.js'

/** A position in the log: the last entry's seq and hash. seq 0 is the empty ledger. */
export interface Head {
  seq: number
  hash: string
}

/**
 * A signed tree head: the master's statement that the log up to `seq` ends in `hash`.
 * Replicas accept entries only up to a head signed by the master key they trust, so a relay
 * (or anyone) serving sync cannot invent, drop or reorder entries without detection.
 */
export interface SignedHead extends Head {
  /** when the master signed it, UTC ISO-8601 */
  time: string
  /** the master's Ed25519 public key, hex */
  publicKey: string
  /** signature over canonical({seq, hash, time}), hex */
  signature: string
}

function headMessage (head: Head & { time: string }): string {
  return canonicalJson({ seq: head.seq, hash: head.hash, time: head.time })
}

export function signHead (head: Head, signer: Signer, time = new Date()): SignedHead {
  const unsigned = { seq: head.seq, hash: head.hash, time: time.toISOString() }
  return { ...unsigned, publicKey: signer.publicKey, signature: signer.sign(headMessage(unsigned)) }
}

/** True when the head is signed by `trustedKey` (the master's public key). */
export function verifyHead (head: SignedHead, trustedKey: string): boolean {
  return head.publicKey === trustedKey && verifySignature(trustedKey, headMessage(head), head.signature)
}
