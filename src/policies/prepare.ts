import { canonicalJson, sha256Hex } from './canonical.js'
import { rememberOwnSignature, type Signer } from './keys.js'
import { type LedgerScope, type Policy, type PolicyBody, RESERVED_FIELDS, policyType } from './policy.js'

function withoutFields (policy: Policy, fields: readonly string[]): Policy {
  const type = policyType(policy)
  const body: PolicyBody = {}
  for (const [key, value] of Object.entries(policy[type])) {
    if (!fields.includes(key)) body[key] = value
  }
  return { [type]: body }
}

/** sha256 of the canonical JSON of the policy without its reserved fields. */
export function contentId (policy: Policy): string {
  return sha256Hex(canonicalJson(withoutFields(policy, RESERVED_FIELDS)))
}

/** What the author signs: the canonical policy without `signature` and `ledger`. */
export function signingPayload (policy: Policy): string {
  return canonicalJson(withoutFields(policy, ['signature', 'ledger']))
}

/** UTC ISO-8601 with microseconds, as AnyLog writes dates (Date has milliseconds). */
export function policyDate (now: Date): string {
  return now.toISOString().replace(/Z$/, '000Z')
}

/** A new policy with id, date, public_key and signature; the input is not changed. */
export function preparePolicy (policy: Policy, signer: Signer, now = new Date()): Policy {
  const base = withoutFields(policy, RESERVED_FIELDS)
  const type = policyType(base)
  const body: PolicyBody = { ...base[type], id: contentId(base), date: policyDate(now), public_key: signer.publicKey }
  const payload = signingPayload({ [type]: body })
  const signature = signer.sign(payload)
  rememberOwnSignature(signature, signer.publicKey, payload)
  return { [type]: { ...body, signature } }
}

/** The signed tombstone that deletes policy `policyId`. */
export function prepareTombstone (policyId: string, signer: Signer, now = new Date()): Policy {
  return preparePolicy({ delete: { policy_id: policyId } }, signer, now)
}

/** The policy as readers see it: `ledger` set, placed right after `date`. */
/** The policy without the `ledger` field readers see (as it is stored and signed). */
export function withoutLedgerScope (policy: Policy): Policy {
  return withoutFields(policy, ['ledger'])
}

export function withLedgerScope (policy: Policy, scope: LedgerScope): Policy {
  const type = policyType(policy)
  const body: PolicyBody = {}
  let placed = false
  for (const [key, value] of Object.entries(policy[type])) {
    if (key === 'ledger') continue
    body[key] = value
    if (key === 'date') { body.ledger = scope; placed = true }
  }
  if (!placed) body.ledger = scope
  return { [type]: body }
}
