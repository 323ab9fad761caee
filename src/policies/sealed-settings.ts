import { LedgerMeshError } from '../base/errors.js'
import { type LedgerOp, type Policy, type PolicyBody, policyBody, policyType } from './policy.js'
import { type JsonObject, type SealKey, isSealedBox, openSealed, sealToAll, sealedRecipients } from './seal.js'

/**
 * A profile's settings (sessions, passwords, API keys) are confidential
 * (docs/workers-and-allocation.md, "Sealed settings"). Their plain text exists in three places
 * only: the memory of the node a user hands the profile to, the masters, and the environment
 * of the runner of the worker the profile is assigned to. On the ledger they are sealed boxes
 * (seal.ts):
 *
 * - in the `profile` policy, sealed to every master key the signing node knows (one box that
 *   each master opens with its own key) for the context profileContext(name, author): the node
 *   that signs the profile seals them (sealForMaster); the active master refuses a profile
 *   whose settings are not a box addressed to it that opens (checkSealedForMaster);
 * - in a `settings_copy` policy, re-sealed by a trusted master to a master key the profile's
 *   box is not addressed to (one trusted after the profile was written), same context;
 * - in each `assignment` of the profile, sealed by the master to the assigned worker's key for
 *   assignmentContext(profile, profile id, worker): a new box for every assignment.
 *
 * Absent or empty settings (`{}`) need no box.
 */

const short = (key: string) => `${key.slice(0, 12)}…`

/** The context of the box in a profile policy: it opens only in the profile of that name by that author. */
export function profileContext (name: string, author: string): string {
  return `profile:${name}|author:${author}`
}

/** The context of the box in an assignment: it opens only for that profile on that worker. */
export function assignmentContext (profile: string, profileId: string, worker: string): string {
  return `assignment|profile:${profile}|profile_id:${profileId}|worker:${worker}`
}

/** Whether a settings value holds anything: absent, null and `{}` need no box. */
export function hasSettings (settings: unknown): boolean {
  if (settings === undefined || settings === null) return false
  return !(typeof settings === 'object' && !Array.isArray(settings) && Object.keys(settings).length === 0)
}

/**
 * A node about to sign `policy` as `author`: a profile's plain settings are sealed to the
 * masters' keys (every key its ledger trusts as a master's), so whichever master is active
 * can place the profile. Other policies, boxes and empty settings are returned as they are.
 * Refuses when no master key is known yet, rather than sign plain text.
 */
export function sealForMaster (policy: Policy, opts: { masterKeys: readonly string[], author: string }): Policy {
  if (policyType(policy) !== 'profile') return policy
  const body = policyBody(policy)
  const settings = body.settings
  if (!hasSettings(settings) || isSealedBox(settings)) return policy
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return policy // the schema words this refusal
  const name = body.name
  if (typeof name !== 'string') return policy // the schema refuses it, naming the field
  if (opts.masterKeys.length === 0) {
    throw new LedgerMeshError('master_unreachable', `profile '${name}': its settings must be sealed to the master's key, which this node does not know yet (its replica has not synced with the master): try again once it has`)
  }
  const box = sealToAll(opts.masterKeys, settings, profileContext(name, opts.author))
  const sealedBody: PolicyBody = { ...body, settings: box as unknown as PolicyBody }
  return { profile: sealedBody }
}

const keysText = (keys: readonly string[]) => keys.length === 1 ? `key ${short(keys[0])}` : `keys ${keys.map(short).join(', ')}`

/**
 * The active master, before ordering a put: a profile's settings must be absent, empty, or a
 * box addressed to the master's key (alone or among other masters' keys) that opens for the
 * profile's name and author. This keeps plain settings off the ledger even from a client that
 * signs its own policies. The refusal never quotes the settings.
 */
export function checkSealedForMaster (op: LedgerOp, master: SealKey): void {
  if (op.op !== 'put' || policyType(op.policy) !== 'profile') return
  const body = policyBody(op.policy)
  const settings = body.settings
  if (!hasSettings(settings)) return
  const name = typeof body.name === 'string' ? body.name : '(no name)'
  const refuse = (why: string, reason: string): never => {
    throw new LedgerMeshError('bad_policy', `profile '${name}': ${why}`, { id: body.id, reason })
  }
  if (!isSealedBox(settings)) {
    refuse(`its settings are plain text, and plain settings never go on the ledger: insert the profile unsigned through a node (it seals the settings to the masters' keys before signing), or seal them to the master's key ${short(master.publicKey)} yourself`, 'settings_not_sealed')
  }
  const to = sealedRecipients(settings)
  if (to !== undefined && !to.includes(master.publicKey)) {
    refuse(`its settings are sealed to ${keysText(to)}, not to the master's key ${short(master.publicKey)}`, 'settings_not_for_master')
  }
  try {
    openSealed(settings, master, profileContext(name, String(body.public_key)))
  } catch (err) {
    refuse(`its sealed settings do not open with the master's key: ${(err as Error).message}`, 'settings_not_opened')
  }
}

/**
 * A master opens a profile's settings (an empty object when it has none): from the profile's
 * own box, or else from a `settings_copy` of this profile addressed to this master's key among
 * `copies` (the caller passes only copies a trusted master key wrote). Throws, saying why, for
 * plain settings (a profile written before settings were sealed) and when neither opens.
 */
export function openProfileSettings (profile: Policy, master: SealKey, copies: () => Iterable<Policy> = () => []): JsonObject {
  const body = policyBody(profile)
  if (!hasSettings(body.settings)) return {}
  if (!isSealedBox(body.settings)) {
    throw new LedgerMeshError('bad_policy', 'its settings are plain text on the ledger (written before settings were sealed): delete the profile and insert it again through a node, which seals them to the masters\' keys', { reason: 'settings_not_sealed' })
  }
  const context = profileContext(String(body.name), String(body.public_key))
  let own: Error
  try {
    return openSealed(body.settings, master, context)
  } catch (err) {
    own = err as Error
  }
  // a profile sealed before this master's key was trusted: a copy another master wrote for it
  let copyError: Error | undefined
  for (const copy of copies()) {
    const c = policyBody(copy)
    if (policyType(copy) !== 'settings_copy' || c.profile_id !== body.id || c.master_key !== master.publicKey) continue
    try {
      return openSealed(c.settings, master, context)
    } catch (err) {
      copyError = err as Error
    }
  }
  const addressedElsewhere = own instanceof LedgerMeshError && own.details.reason === 'wrong_recipient'
  const copyNote = copyError !== undefined
    ? `; nor does its copy for this key: ${copyError.message}`
    : addressedElsewhere ? ', and no trusted master wrote a copy of them for this key (settings_copy)' : ''
  throw new LedgerMeshError('bad_policy', `its sealed settings do not open with the master's key: ${own.message}${copyNote}`, { reason: 'settings_not_opened' })
}
