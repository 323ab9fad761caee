/**
 * The policy model. A policy is a JSON object with exactly one root key, its type:
 * `{"worker": {"name": "w1", ...}}`. Inside the body the ledger keeps reserved fields:
 *
 * - `id`: sha256 hex of the canonical JSON of the policy without reserved fields
 * - `date`: UTC ISO-8601 with microseconds, set when the policy is prepared
 * - `ledger`: "global" once ordered by the master, "local" while in a node's outbox. It is a
 *   view attribute: it is never stored in the log nor covered by the signature, because it
 *   changes when the master orders the policy.
 * - `public_key`: the author's Ed25519 public key (hex, 32 bytes)
 * - `signature`: the author's Ed25519 signature (hex, 64 bytes) over the canonical JSON of
 *   the policy without `signature` and `ledger`
 */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue }
export type PolicyBody = { [field: string]: JsonValue }
export type Policy = { [type: string]: PolicyBody }

export const RESERVED_FIELDS = ['id', 'date', 'ledger', 'public_key', 'signature'] as const
export type ReservedField = typeof RESERVED_FIELDS[number]

/**
 * Largest accepted policy, measured as UTF-8 bytes of its canonical JSON: 64 KiB less 128
 * bytes, so that a log entry (the policy and at most 107 bytes around it: prev_hash, seq, op)
 * always fits the 2-byte length of a C2SP tile bundle (65,535 bytes).
 */
export const MAX_POLICY_BYTES = 64 * 1024 - 128

export type LedgerScope = 'global' | 'local'

/** A put carries a signed policy; a delete carries a signed tombstone naming the deleted one. */
export type EntryOp = 'put' | 'delete'

/** What the master is asked to order: an operation before it has a place in the chain. */
export interface LedgerOp {
  op: EntryOp
  policy: Policy
}

/** The policy's type: its single root key. Callers must have validated the shape. */
export function policyType (policy: Policy): string {
  const keys = Object.keys(policy)
  if (keys.length !== 1) {
    throw new TypeError(`a policy has exactly one root key, found ${keys.length}`)
  }
  return keys[0]
}

export function policyBody (policy: Policy): PolicyBody {
  return policy[policyType(policy)]
}

export function policyId (policy: Policy): string {
  const id = policyBody(policy).id
  if (typeof id !== 'string') throw new TypeError('policy has no id')
  return id
}
