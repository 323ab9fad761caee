import { type Policy, policyBody } from './policy.js'
import { preparePolicy } from './prepare.js'
import type { Signer } from './keys.js'
import { validatePolicy } from './validate.js'

/**
 * A policy a user hands a node (REST, `blockchain insert`): kept as is when an author already
 * signed it (the master verifies that signature), else checked and signed by this node. The
 * check comes first so that a malformed id, date or ledger is refused with its field named
 * instead of being silently replaced by preparePolicy.
 */
export function signUnlessSigned (policy: Policy, signer: Signer): Policy {
  if (typeof policyBody(policy).signature === 'string') return policy
  validatePolicy(policy, { requireSigned: false })
  return preparePolicy(policy, signer)
}
