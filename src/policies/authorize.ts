import { LedgerMeshError } from '../base/errors.js'
import { type LedgerOp, type Policy, policyBody, policyType } from './policy.js'
import { MASTER_ONLY_TYPES, NAMED_TYPES, PRIVILEGED_TYPES } from './schemas.js'

/** What the authorization rules need to know about the ledger. */
export interface AuthContext {
  /** the master's public key; undefined until the master has declared itself */
  masterKey: string | undefined
  /** whether a key is one of the masters' (several masters over one database; see trustedMasterKeys) */
  isMasterKey?: (key: string) => boolean
  isAdmin: (key: string) => boolean
  getPolicy: (id: string) => Policy | undefined
  findByName: (type: string, name: string) => Policy | undefined
  /** true once the ledger holds a `network` policy with `admission: required` */
  admissionRequired: () => boolean
  /** whether a live `admission` policy admits this key */
  isAdmitted: (key: string) => boolean
  /** whether a live `revocation` policy names this key: it binds every key, masters' and admins' too */
  isRevoked: (key: string) => boolean
}

/** Names the allocator keys on: one live policy per name (docs/workers-and-allocation.md). */
const UNIQUE_NAME_TYPES = ['subaccount', 'profile'] as const

const short = (key: unknown) => `${String(key).slice(0, 12)}…`

/**
 * The rules (docs/policies-and-ledger.md; docs/security.md, "Security model"): once the
 * network requires admission, only the master, admins and admitted keys write at all; a node
 * may write and delete only its own declaration; only the master and admin keys may write
 * assignments, admin, network, admission and join-token policies and others' policies. The
 * master checks this before ordering; replicas check it again when verifying.
 */
export function authorizeOp (op: LedgerOp, ctx: AuthContext): void {
  const type = policyType(op.policy)
  const body = policyBody(op.policy)
  const author = String(body.public_key)
  const isMaster = (key: string): boolean => key === ctx.masterKey || ctx.isMasterKey?.(key) === true
  const privileged = isMaster(author) || ctx.isAdmin(author)
  const deny = (message: string): never => { throw new LedgerMeshError('unauthorized', message, { id: body.id }) }

  // first, before any right a key holds: a revoked admin or master is refused like any node
  if (ctx.isRevoked(author)) {
    throw new LedgerMeshError('unauthorized', `key ${author} was revoked (a revocation policy names it): it may not write; 'admit node where key = ${author}' on the active master lifts the revocation`, { id: body.id, key: author, reason: 'revoked' })
  }
  // an admin is trusted with the ledger, not with the settings only masters open
  if (op.op === 'put' && (MASTER_ONLY_TYPES as readonly string[]).includes(type) && !isMaster(author)) {
    deny(`key ${short(author)} may not write ${type} policies: only a trusted master key may`)
  }
  if (op.op === 'put' && type === 'settings_request' && body.master_key !== author) {
    deny(`key ${short(author)} may not ask for settings copies for key ${short(body.master_key)}: a master asks for its own key only`)
  }
  // a master's key is revoked by another master only (an admin cannot take the ledger's
  // writers away), and revocations are lifted by a master only (`admit node` on it)
  if (op.op === 'put' && type === 'revocation' && isMaster(String(body.key))) {
    if (body.key === author) deny(`key ${short(author)} may not revoke its own key`)
    if (!isMaster(author)) deny(`key ${short(author)} may not revoke master key ${short(body.key)}: only another trusted master may`)
  }
  const privilegedType = (PRIVILEGED_TYPES as readonly string[]).includes(type)
  if (op.op === 'put' && privilegedType && !privileged) {
    deny(`key ${short(author)} may not write ${type} policies: only the master or an admin may`)
  }
  if (!privileged && ctx.admissionRequired() && !ctx.isAdmitted(author)) {
    throw new LedgerMeshError('unauthorized', `key ${author} is not admitted to this network: start the node with JOIN_TOKEN=<a token from 'create join token' on the master>, or run 'admit node where key = ${author}' on the master`, { id: body.id, key: author, reason: 'not_admitted' })
  }

  if (op.op === 'delete') {
    const targetId = String(body.policy_id)
    const target = ctx.getPolicy(targetId)
    if (target === undefined) throw new LedgerMeshError('not_found', `no policy with id ${targetId} to delete`, { id: targetId })
    const owner = policyBody(target).public_key
    if (policyType(target) === 'revocation' && !isMaster(author)) {
      deny(`key ${short(author)} may not delete revocation ${short(targetId)}: only a master lifts a revocation ('admit node' on the active master)`)
    }
    if (owner !== author && !privileged) {
      deny(`key ${short(author)} may not delete ${policyType(target)} policy ${short(targetId)}: only its author (${short(owner)}), the master or an admin may`)
    }
    return
  }

  // written by the master or an admin (checked above): no name rules apply
  if (privilegedType) return
  if (type === 'master' && ctx.masterKey !== undefined && !privileged) {
    deny(`key ${short(author)} may not declare a master: the master is ${short(ctx.masterKey)}`)
  }
  const name = body.name
  if ((UNIQUE_NAME_TYPES as readonly string[]).includes(type) && typeof name === 'string') {
    const existing = ctx.findByName(type, name)
    if (existing !== undefined) {
      throw new LedgerMeshError('conflict', `${type} '${name}' already exists (policy ${short(policyBody(existing).id)}): delete it first to replace it`, { id: body.id })
    }
  }
  if ((NAMED_TYPES as readonly string[]).includes(type) && typeof name === 'string') {
    const existing = ctx.findByName(type, name)
    const owner = existing === undefined ? undefined : policyBody(existing).public_key
    if (owner !== undefined && owner !== author && !privileged) {
      deny(`${type} '${name}' is declared by key ${short(owner)}; key ${short(author)} may not replace it`)
    }
  }
}
