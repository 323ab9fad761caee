import { type Policy, policyBody } from './policy.js'
import { preparePolicy } from './prepare.js'
import type { Signer } from './keys.js'
import { sealForMaster } from './sealed-settings.js'
import { validatePolicy } from './validate.js'

/**
 * A policy a user hands a node (REST, `blockchain insert`): kept as is when an author already
 * signed it (the master verifies that signature, and refuses plain profile settings), else
 * checked, its profile settings sealed to the masters' keys (`masterKeys`: the node's replica
 * knows them, Ledger.masterKeys; none refuses a profile with settings), and signed by this node. The check
 * comes first so that a malformed id, date or ledger is refused with its field named instead
 * of being silently replaced by preparePolicy.
 */
export function signUnlessSigned (policy: Policy, signer: Signer, opts: { masterKeys: readonly string[] }): Policy {
  if (typeof policyBody(policy).signature === 'string') return policy
  validatePolicy(policy, { requireSigned: false })
  return prepareSealed(policy, signer, opts)
}

/**
 * `blockchain prepare policy` and unsigned inserts: preparePolicy, with a profile's plain
 * settings sealed to the masters' keys first (the box is bound to the signer as author).
 */
export function prepareSealed (policy: Policy, signer: Signer, opts: { masterKeys: readonly string[] }): Policy {
  const sealed = sealForMaster(policy, { masterKeys: opts.masterKeys, author: signer.publicKey })
  const prepared = preparePolicy(sealed, signer)
  // the box makes the policy larger: refuse here, naming the size, rather than at the master
  if (sealed !== policy) validatePolicy(prepared)
  return prepared
}
