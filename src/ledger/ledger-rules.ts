import { LedgerMeshError, errorMessage } from '../base/errors.js'
import { type AuthContext, authorizeOp } from '../policies/authorize.js'
import { validatePolicy, verifyPolicy } from '../policies/validate.js'
import { verifyPool } from '../policies/verify-pool.js'
import type { Entry } from './entry.js'
import { type SignedHead, logOrigin, verifyHead } from './head.js'
import { type LedgerOp, type Policy, policyBody, policyId, policyType } from '../policies/policy.js'
import type { LedgerState } from './state.js'
import type { Signer } from '../policies/keys.js'
import { prepareTombstone } from '../policies/prepare.js'
import { DECLARATION_TYPES } from '../policies/schemas.js'

/**
 * The ledger's rules that read its live state: who is admitted, which checkpoints it trusts,
 * and the authorization view of a batch (the master ordering one, a replica verifying one),
 * plus the errors the group committer gives for ids the log already holds.
 */

/** Policy types about one key (`key` field): admin rights, admission, revocation. */
const KEYED_TYPES: ReadonlySet<string> = new Set(['admin', 'admission', 'revocation', 'master_key'])

/** Admitted: a live admission for the key and no live revocation of it. */
export function isAdmittedIn (state: LedgerState, key: string): boolean {
  return holdsKey(state, 'admission', key) && !isRevokedIn(state, key)
}

/** Revoked: a live revocation names the key (whatever else it holds: admin, master_key). */
export function isRevokedIn (state: LedgerState, key: string): boolean {
  return holdsKey(state, 'revocation', key)
}

/** Whether a live policy of `type` names `key` (and passes `keep`, for a batch's deletes). */
/**
 * Whether `key` may take part (sync, renew a lease, write): never once revoked; always while
 * the network does not require admission; else the masters, admins and admitted keys only.
 */
export function admitsKey (state: LedgerState, pinned: string | undefined, key: string | undefined): boolean {
  // a revocation binds every key, an admin's or a master's too, admission required or not
  if (key !== undefined && isRevokedIn(state, key)) return false
  if (!requiresAdmission(state.policiesOfType('network'))) return true
  if (key === undefined) return false
  return holdsKey(state, 'admin', key) || isAdmittedIn(state, key) || trustedMasterKeys(state, pinned).has(key)
}

export function holdsKey (state: LedgerState, type: string, key: string, keep: (policy: Policy) => boolean = () => true): boolean {
  for (const policy of state.lookup(type, 'key', key)) {
    if (policyBody(policy).key === key && keep(policy)) return true
  }
  return false
}

/**
 * Throws bad_signature unless `head` is a checkpoint of the network whose first master key is
 * `pinned`, signed by `key`, one of the `trusted` master keys.
 */
export function checkHeadTrusted (head: SignedHead, key: string, pinned: string, trusted: ReadonlySet<string>): void {
  if (head.origin !== logOrigin(pinned)) {
    throw new LedgerMeshError('bad_signature', `signed head at seq ${head.seq} is a checkpoint of another log (origin ${JSON.stringify(String(head.origin).slice(0, 80))}, this network's is ${logOrigin(pinned)})`)
  }
  if (!trusted.has(key)) {
    throw new LedgerMeshError('bad_signature', `signed head at seq ${head.seq} is not signed by the trusted master key (its key ${key.slice(0, 12)}… is not one a trusted master declared)`)
  }
  if (!verifyHead(head, key)) {
    throw new LedgerMeshError('bad_signature', `signed head at seq ${head.seq} is not signed by the trusted master key`)
  }
}

/**
 * The master keys a ledger trusts: the pinned first master's key, and every key a
 * `master_key` policy names when that policy was signed by a key already trusted (so the set
 * grows only from the first master, never from a stranger or an admin), less the keys a
 * live revocation names. `extra` are policies not yet in `state` (a batch being verified).
 */
export function trustedMasterKeys (state: LedgerState, pinned: string | undefined, extra: readonly Policy[] = []): Set<string> {
  const trusted = new Set<string>(pinned === undefined ? [] : [pinned])
  const declarations = [...state.policiesOfType('master_key'), ...extra.filter(p => policyType(p) === 'master_key')]
    .map(policyBody)
    .filter(body => typeof body.key === 'string' && typeof body.public_key === 'string')
  // a key declared by a key declared later still counts: repeat until nothing is added
  for (let grew = true; grew;) {
    grew = false
    for (const body of declarations) {
      const key = body.key as string
      if (trusted.has(key)) continue
      if (trusted.has(body.public_key as string)) {
        trusted.add(key)
        grew = true
      }
    }
  }
  // a master declared by a master revoked since stays trusted: it was declared before
  for (const key of trusted) if (isRevokedIn(state, key)) trusted.delete(key)
  return trusted
}

/**
 * The first master's key behind `key`: following `master_key` declarations back from the key
 * they declare to the key that signed them, as far as `policies` go (a replica's first batch
 * may be signed by a later master; it pins the master that began the ledger).
 */
export function rootMasterKey (key: string, policies: readonly Policy[]): string {
  const declaredBy = new Map<string, string>()
  for (const policy of policies) {
    if (policyType(policy) !== 'master_key') continue
    const body = policyBody(policy)
    if (typeof body.key === 'string' && typeof body.public_key === 'string' && body.public_key !== body.key && !declaredBy.has(body.key)) declaredBy.set(body.key, body.public_key)
  }
  let root = key
  for (const seen = new Set([key]); declaredBy.has(root) && !seen.has(declaredBy.get(root)!);) {
    root = declaredBy.get(root)!
    seen.add(root)
  }
  return root
}

/** Admission is required once a live `network` policy says so. */
export function requiresAdmission (networkPolicies: Iterable<Policy>): boolean {
  for (const policy of networkPolicies) {
    if (policyBody(policy).admission === 'required') return true
  }
  return false
}

/** An authorization view of the state as a batch changes it; `record` applies an accepted op. */
export interface BatchAuth { ctx: AuthContext, record: (op: LedgerOp) => void }

/**
 * An authorization context that sees the state as a batch changes it, so the master (when
 * it orders a batch) and every replica (when it verifies one) judge each entry against
 * exactly the same state. `record` applies an accepted op to the view.
 */
export function batchAuthContext (state: LedgerState, masterKey: string | undefined): BatchAuth {
  // What the batch added and removed so far, indexed so each check is O(1): a catch-up
  // batch holds thousands of entries.
  const added = new Map<string, Policy>()
  const removed = new Set<string>()
  const addedByName = new Map<string, string>()
  /** `type NUL key` → id, for the keyed types (admin, admission) the batch added */
  const addedKeys = new Map<string, string>()
  const addedNetwork = new Map<string, Policy>()
  const nameKey = (type: string, name: unknown) => `${type}\u0000${String(name)}`
  const live = (policy: Policy): boolean => !removed.has(policyId(policy))
  const keyedBy = (type: string, key: string): boolean =>
    addedKeys.has(nameKey(type, key)) || holdsKey(state, type, key, live)
  const revoked = (key: string): boolean => keyedBy('revocation', key)
  const masterKeys = trustedMasterKeys(state, masterKey)
  const ctx: AuthContext = {
    masterKey: masterKey,
    isMasterKey: key => masterKeys.has(key),
    isAdmin: key => keyedBy('admin', key),
    getPolicy: id => removed.has(id) ? undefined : added.get(id) ?? state.get(id),
    findByName: (type, name) => {
      const inBatch = addedByName.get(nameKey(type, name))
      if (inBatch !== undefined) return added.get(inBatch)
      const found = state.findByName(type, name)
      return found !== undefined && removed.has(policyId(found)) ? undefined : found
    },
    admissionRequired: () => requiresAdmission([...[...state.policiesOfType('network')].filter(live), ...addedNetwork.values()]),
    isAdmitted: key => keyedBy('admission', key) && !revoked(key),
    isRevoked: revoked
  }
  const record = (op: LedgerOp): void => {
    if (op.op === 'put') {
      const id = policyId(op.policy)
      const type = policyType(op.policy)
      const body = policyBody(op.policy)
      // a master declaring another master's key: trusted from here on in the batch too; a
      // revoked one no longer is
      if (type === 'master_key' && typeof body.key === 'string' && masterKeys.has(String(body.public_key)) && !revoked(body.key)) masterKeys.add(body.key)
      if (type === 'revocation' && typeof body.key === 'string') masterKeys.delete(body.key)
      added.set(id, op.policy)
      if (body.name !== undefined) addedByName.set(nameKey(type, body.name), id)
      if (KEYED_TYPES.has(type) && typeof body.key === 'string') addedKeys.set(nameKey(type, body.key), id)
      if (type === 'network') addedNetwork.set(id, op.policy)
    } else {
      const target = String(policyBody(op.policy).policy_id)
      const policy = added.get(target)
      if (policy !== undefined) {
        const body = policyBody(policy)
        const key = nameKey(policyType(policy), body.name)
        if (addedByName.get(key) === target) addedByName.delete(key)
        const keyed = nameKey(policyType(policy), body.key)
        if (addedKeys.get(keyed) === target) addedKeys.delete(keyed)
        addedNetwork.delete(target)
      }
      added.delete(target)
      removed.add(target)
    }
  }
  return { ctx, record }
}


/** The ids a store refused as already in its log, when that is why a commit failed. */
export function refusedIds (err: unknown): Set<string> | undefined {
  if (!(err instanceof LedgerMeshError) || err.code !== 'duplicate_id') return undefined
  const ids = err.details.ids ?? (err.details.id === undefined ? undefined : [err.details.id])
  return Array.isArray(ids) && ids.length > 0 ? new Set(ids.map(String)) : undefined
}

/**
 * A policy id the log holds although the live state does not: the policy was deleted, and a
 * deleted id stays retired (re-inserting it would make an old tombstone ambiguous and let a
 * late retry of an insert bring back a policy someone deleted).
 */
export function retiredIdError (id: string): LedgerMeshError {
  return new LedgerMeshError('conflict', `policy ${id} was deleted from the ledger and its id is retired: a deleted policy cannot be inserted again with the same content (change a field, e.g. add a version)`, { id, retired: true })
}

/** An insert that passed the checks, with the ops it commits (a replaced declaration's tombstone first). */
export interface AcceptedInsert<I> { insert: I, ops: LedgerOp[] }

/**
 * The master's checks of a batch of inserts before it orders them, each against the state as
 * the batch so far changes it: a new id, the authorization rules, and a master whose own key
 * the batch has not revoked. Refused inserts are rejected; the others come back with the ops
 * each expands to.
 */
export function acceptBatch<I extends { op: LedgerOp, reject: (err: Error) => void }> (state: LedgerState, masterKey: string | undefined, signer: Signer, batch: readonly I[]): Array<AcceptedInsert<I>> {
  const accepted: Array<AcceptedInsert<I>> = []
  const idsInBatch = new Set<string>()
  const { ctx: auth, record } = batchAuthContext(state, masterKey)
  for (const insert of batch) {
    try {
      const id = policyId(insert.op.policy)
      if (idsInBatch.has(id) || state.has(id)) throw new LedgerMeshError('duplicate_id', `policy ${id} is already in the ledger`, { id })
      authorizeOp(insert.op, auth)
      // the head over a batch is signed by this master: one that revoked this master's key
      // would leave a head signed by a key the ledger no longer trusts
      if (auth.isRevoked(signer.publicKey)) {
        throw new LedgerMeshError('unauthorized', `this master's key ${signer.publicKey.slice(0, 12)}… is revoked: it orders nothing more (insert on another master)`, { id, reason: 'revoked' })
      }
      const ops = [...replacedDeclaration(state, insert.op, signer), insert.op]
      for (const op of ops) { idsInBatch.add(policyId(op.policy)); record(op) }
      accepted.push({ insert, ops })
    } catch (err) {
      insert.reject(err as Error)
    }
  }
  return accepted
}

/**
 * Replicas re-check what the master checked: each policy's own signature and the
 * authorization rules, entry by entry, against the state as the batch changes it.
 */
export async function verifyBatchAuthorization (state: LedgerState, masterKey: string | undefined, entries: readonly Entry[]): Promise<void> {
  // author signatures on every core first; errors are still reported in entry order
  const badSignature = await verifyPool.firstInvalid(entries.map(e => e.policy))
  const { ctx, record } = batchAuthContext(state, masterKey)
  for (const [i, entry] of entries.entries()) {
    validatePolicy(entry.policy)
    if (i === badSignature) verifyPolicy(entry.policy)
    try {
      authorizeOp({ op: entry.op, policy: entry.policy }, ctx)
    } catch (err) {
      throw new LedgerMeshError('unauthorized', `sync batch rejected: entry ${entry.seq}: ${errorMessage(err)}`, { seq: entry.seq })
    }
    record({ op: entry.op, policy: entry.policy })
  }
}

/**
 * A node re-declaring itself (same type and name, e.g. after a restart on new ports)
 * replaces its old declaration: the master writes a tombstone for the old one first.
 */
export function replacedDeclaration (state: LedgerState, op: LedgerOp, signer: Signer): LedgerOp[] {
  if (op.op !== 'put') return []
  const type = policyType(op.policy)
  const name = policyBody(op.policy).name
  if (!(DECLARATION_TYPES as readonly string[]).includes(type) || typeof name !== 'string') return []
  const old = state.findByName(type, name)
  if (old === undefined) return []
  return [{ op: 'delete', policy: prepareTombstone(policyId(old), signer) }]
}

/**
 * Throws bad_signature unless a head is signed by the trusted master key (when one is pinned:
 * before that there is nothing to check it against), or by another master's key the ledger
 * (with `pending` entries) declares. A head is verified once: sync checks a run's head before
 * it collects entries toward it, and applyBatch does not check it again.
 */
export class SignedHeadCheck {
  /** the last head verified, with the key it was verified against */
  private last?: string

  check (head: SignedHead, pinned: string | undefined, state: LedgerState, pending: readonly Entry[] = []): void {
    if (pinned === undefined) return
    const key = head.publicKey === pinned ? pinned : head.publicKey
    const verified = `${key} ${head.seq} ${head.hash} ${head.root} ${head.origin} ${head.time} ${head.publicKey} ${head.signature}`
    if (verified === this.last) return
    checkHeadTrusted(head, key, pinned, trustedMasterKeys(state, pinned, pending.map(e => e.policy)))
    this.last = verified
  }
}

/** Each accepted insert is answered with its own entry: the last of its ops (entries in op order). */
export function answerEach (accepted: ReadonlyArray<{ insert: { resolve: (entry: Entry) => void }, ops: readonly unknown[] }>, entries: readonly Entry[]): void {
  let index = 0
  for (const { insert, ops } of accepted) {
    index += ops.length
    insert.resolve(entries[index - 1])
  }
}
