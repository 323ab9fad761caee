import { LedgerMeshError, errorMessage } from '../base/errors.js'
import type { Logger } from '../base/logger.js'
import type { Entry, LedgerOp } from '../ledger/entry.js'
import type { LedgerState } from '../ledger/state.js'
import type { Signer } from '../policies/keys.js'
import { type Policy, policyBody, policyType } from '../policies/policy.js'
import { preparePolicy, prepareTombstone } from '../policies/prepare.js'
import { type JsonObject, type SealKey, isSealedBox, sealTo, sealedRecipients } from '../policies/seal.js'
import { hasSettings, openProfileSettings, profileContext } from '../policies/sealed-settings.js'

/**
 * Settings copies (docs/workers-and-allocation.md, "Sealed settings"): a profile's box is
 * addressed to the master keys its signing node knew. A master key trusted later (a
 * `master_key` policy) gets, from the active master, a `settings_copy` per such profile: the
 * settings re-sealed to that key for the profile's own context, so that master can place the
 * profile after a failover.
 */

/** What reading and writing copies needs of the ledger. */
export interface CopyLedger {
  readonly state: LedgerState
  /** every master key the ledger trusts (Ledger.masterKeys) */
  readonly masterKeys: string[]
  submit: (op: LedgerOp) => Promise<Entry>
}

/**
 * Whether appended entries may call for copies to be written or deleted: a profile, master key
 * or settings request put, or any delete (a profile or a master key may have gone). Not a
 * copy's put: the copies a run writes would only start another run that finds nothing to do.
 */
export function touchesSettingsCopies (entries: readonly Entry[]): boolean {
  return entries.some(e => e.op === 'delete' || ['profile', 'master_key', 'settings_request'].includes(policyType(e.policy)))
}

/** How many copies are submitted at once: the ledger's group commit orders them together. */
const SUBMIT_CHUNK = 64

/**
 * The live `settings_copy` policies of `profile` that a trusted master key wrote (any other is
 * ignored: a copy is only as good as its author). `trusted` defaults to the ledger's master keys.
 */
export function settingsCopies (ledger: Pick<CopyLedger, 'state' | 'masterKeys'>, profile: Policy, trusted: ReadonlySet<string> = new Set(ledger.masterKeys)): Policy[] {
  const { id, name } = policyBody(profile)
  // by name (an index every node keeps), then by id: a replaced profile's copies do not count
  return [...ledger.state.lookup('settings_copy', 'profile', name)].filter(p => {
    const body = policyBody(p)
    return body.profile_id === id && trusted.has(String(body.public_key))
  })
}

/** What a master opens a profile's settings from: its own box, or a copy for this master's key. */
export function openSettingsFor (ledger: Pick<CopyLedger, 'state' | 'masterKeys'>, profile: Policy, master: SealKey): JsonObject {
  return openProfileSettings(profile, master, () => settingsCopies(ledger, profile))
}

export interface ResealOptions {
  ledger: CopyLedger
  /** the active master's key: it opens the settings and signs the copies */
  signer: Signer & SealKey
  log: Logger
}

export interface ResealResult {
  /** the copies written: one per profile and master key its box was not addressed to, or whose master asked for one */
  written: Array<{ id: string, profile: string, profile_id: string, master_key: string }>
  /** copies and requests deleted: their profile is gone, their key or author is no longer a trusted master's, another copy serves the same key, or a request was served */
  deleted: string[]
}

/**
 * The live settings requests by trusted master keys (each for its own key), by profile id:
 * the keys whose part of a profile's box did not open for them (a box can be addressed to a
 * master and still hold garbage for it: only that master can tell).
 */
function requestsByProfile (ledger: Pick<CopyLedger, 'state'>, trusted: ReadonlySet<string>): Map<string, Map<string, Policy>> {
  const byProfile = new Map<string, Map<string, Policy>>()
  for (const request of ledger.state.policiesOfType('settings_request')) {
    const body = policyBody(request)
    const key = String(body.master_key)
    if (body.public_key !== key || !trusted.has(key)) continue
    const id = String(body.profile_id)
    byProfile.set(id, (byProfile.get(id) ?? new Map<string, Policy>()).set(key, request))
  }
  return byProfile
}

/**
 * Run by the active master, one run at a time (after declaring master keys, and after entries
 * touchesSettingsCopies accepts): for every profile with sealed settings this master can open,
 * writes a copy for each trusted master key that neither the profile's box nor an existing
 * trusted copy is addressed to, and for each master that asked for one (settings_request:
 * its part of the box did not open; the request is deleted with the copy written); deletes
 * copies that no longer serve (profile deleted or replaced, key or author no longer trusted, a
 * second copy for the same key) and requests whose profile or key went. Idempotent: a second
 * run with nothing changed writes nothing. Profiles it cannot open (plain settings, boxes for
 * other keys only) are skipped: the allocator says why it does not place them.
 */
export async function resealForMasters (opts: ResealOptions): Promise<ResealResult> {
  const { ledger, signer, log } = opts
  const trusted = new Set(ledger.masterKeys)
  if (!trusted.has(signer.publicKey)) {
    throw new LedgerMeshError('unauthorized', `cannot write settings copies: this node's key ${signer.publicKey.slice(0, 12)}… is not a master key the ledger trusts (declare it with a master_key policy first)`)
  }
  const others = [...trusted].filter(k => k !== signer.publicKey)
  const result: ResealResult = { written: [], deleted: [] }
  const ops: LedgerOp[] = []
  const profiles = new Map([...ledger.state.policiesOfType('profile')].map(p => [String(policyBody(p).id), p]))

  const remove = (policy: Policy): void => {
    const id = String(policyBody(policy).id)
    ops.push({ op: 'delete', policy: prepareTombstone(id, signer) })
    result.deleted.push(id)
  }
  const requests = requestsByProfile(ledger, trusted)
  for (const request of ledger.state.policiesOfType('settings_request')) {
    const body = policyBody(request)
    if (!profiles.has(String(body.profile_id)) || requests.get(String(body.profile_id))?.get(String(body.master_key)) !== request) remove(request)
  }

  const kept = new Set<string>()
  for (const copy of ledger.state.policiesOfType('settings_copy')) {
    const body = policyBody(copy)
    // one copy per profile and key is enough (two overlapping runs may each have written one);
    // a copy its master asked to replace goes (the new one is written below)
    const slot = `${String(body.profile_id)}|${String(body.master_key)}`
    const replaced = requests.get(String(body.profile_id))?.has(String(body.master_key)) === true
    if (profiles.has(String(body.profile_id)) && trusted.has(String(body.master_key)) && trusted.has(String(body.public_key)) && !kept.has(slot) && !replaced) {
      kept.add(slot)
      continue
    }
    remove(copy)
  }

  for (const [id, profile] of profiles) {
    const body = policyBody(profile)
    if (ledger.state.isLocal(id) || !hasSettings(body.settings) || !isSealedBox(body.settings)) continue
    const asked = requests.get(id) ?? new Map<string, Policy>()
    const copies = settingsCopies(ledger, profile, trusted).filter(c => !asked.has(String(policyBody(c).master_key)))
    const covered = new Set([...(sealedRecipients(body.settings) ?? []), ...copies.map(c => String(policyBody(c).master_key))])
    const missing = others.filter(k => !covered.has(k) || asked.has(k))
    if (missing.length === 0) continue
    let settings: JsonObject
    try {
      settings = openProfileSettings(profile, signer, () => copies)
    } catch (err) {
      log.debug({ profile: body.name, id, err: errorMessage(err) }, 'settings copy not written: this master cannot open the profile\'s settings')
      continue
    }
    const name = String(body.name)
    for (const key of missing) {
      const box = sealTo(key, settings, profileContext(name, String(body.public_key)))
      const policy = preparePolicy({ settings_copy: { profile: name, profile_id: id, master_key: key, settings: box as never } }, signer)
      ops.push({ op: 'put', policy })
      result.written.push({ id: String(policyBody(policy).id), profile: name, profile_id: id, master_key: key })
      const request = asked.get(key)
      if (request !== undefined) remove(request)
    }
  }

  for (let i = 0; i < ops.length; i += SUBMIT_CHUNK) {
    await Promise.all(ops.slice(i, i + SUBMIT_CHUNK).map(async op => await ledger.submit(op)))
  }
  for (const w of result.written) log.info({ profile: w.profile, profile_id: w.profile_id, master_key: w.master_key }, 'profile settings re-sealed for another master (settings_copy)')
  if (result.deleted.length > 0) log.info({ deleted: result.deleted.length }, 'settings copies that no longer serve deleted')
  return result
}

/**
 * A master's own check of what the active master cannot check for it: for each of `profiles`
 * whose settings are addressed to this master (its part of the box, or a trusted copy) but do
 * not open for it, a `settings_request` for a copy, unless one of its own is live. Run by a
 * standby master as profiles arrive, so a profile whose box holds garbage for it is repaired
 * while the master that can open it still writes, not found after a failover.
 */
export function settingsRequests (ledger: Pick<CopyLedger, 'state' | 'masterKeys'>, profiles: Iterable<Policy>, master: Signer & SealKey): LedgerOp[] {
  const trusted = new Set(ledger.masterKeys)
  if (!trusted.has(master.publicKey)) return []
  const mine = requestsByProfile(ledger, trusted)
  const ops: LedgerOp[] = []
  for (const profile of profiles) {
    const body = policyBody(profile)
    const id = String(body.id)
    if (ledger.state.isLocal(id) || !hasSettings(body.settings) || !isSealedBox(body.settings) || mine.get(id)?.has(master.publicKey) === true) continue
    const copies = settingsCopies(ledger, profile, trusted)
    const addressed = (sealedRecipients(body.settings) ?? []).includes(master.publicKey) || copies.some(c => policyBody(c).master_key === master.publicKey)
    // not addressed to this master at all: the active master's copy pass writes it a copy unasked
    if (!addressed) continue
    try {
      openProfileSettings(profile, master, () => copies)
    } catch {
      ops.push({ op: 'put', policy: preparePolicy({ settings_request: { profile: String(body.name), profile_id: id, master_key: master.publicKey } }, master) })
    }
  }
  return ops
}
