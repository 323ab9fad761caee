import type { JsonValue, Policy } from '../policies/policy.js'
import { policyBody, policyType } from '../policies/policy.js'
import { withLedgerScope } from '../policies/prepare.js'
import type { Entry } from './entry.js'

/** Fields indexed from the start; any other (type, field) is indexed on its first lookup. */
const EAGER_FIELDS = ['name', 'company', 'kind', 'ip', 'slave', 'worker', 'profile', 'subaccount', 'policy_id', 'key']
const EAGER = new Set(EAGER_FIELDS)
/**
 * Indexes built on demand (any other field a query names) kept at once; past this the least
 * recently used is dropped and rebuilt if asked for again. Queries come from outside (REST),
 * so without a cap every made-up field name would cost an index forever.
 */
export const MAX_ADHOC_INDEXES = 256

interface Stored {
  policy: Policy
  type: string
  /** the log position (local outbox policies: undefined) */
  seq?: number
}

/** AnyLog matches are case-insensitive: index and look up scalars by this key. */
export function indexKey (value: unknown): string | undefined {
  if (typeof value === 'string') return value.toLowerCase()
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return undefined
}

/**
 * The live policies: a fold of the log (puts add, tombstones remove) plus the local outbox.
 * Indexes hold ids, never copies: by type, and by (type, field, value).
 */
export class LedgerState {
  private readonly byId = new Map<string, Stored>()
  private readonly byType = new Map<string, Set<string>>()
  /** type → field → value key → ids */
  private readonly fieldIndex = new Map<string, Map<string, FieldIndex>>()
  /** the on-demand indexes, least recently used first: `type NUL field` → true */
  private readonly adhocIndexes = new Map<string, true>()
  /** one copy of each author key (see shareAuthorKey) */
  private readonly authorKeys = new Map<string, string>()
  /** policies examined by scans, for tests that prove a lookup uses its index */
  readonly stats = { scanned: 0 }

  get size (): number { return this.byId.size }
  /** how many (type, field) indexes exist, eager and on-demand */
  get indexCount (): number {
    let count = 0
    for (const fields of this.fieldIndex.values()) count += fields.size
    return count
  }

  apply (entry: Entry): void {
    if (entry.op === 'put') {
      const id = String(policyBody(entry.policy).id)
      if (this.byId.has(id)) this.remove(id)
      this.add(id, { policy: entry.policy, type: policyType(entry.policy), seq: entry.seq })
    } else {
      this.remove(String(policyBody(entry.policy).policy_id))
    }
  }

  /** Empties the state (a benchmark frees a closed ledger's memory this way). */
  reset (): void {
    this.byId.clear()
    this.byType.clear()
    this.fieldIndex.clear()
    this.adhocIndexes.clear()
    this.authorKeys.clear()
  }

  /** A policy waiting in this node's outbox: visible with `"ledger": "local"`. */
  addLocal (policy: Policy): void {
    const id = String(policyBody(policy).id)
    if (!this.byId.has(id)) this.add(id, { policy, type: policyType(policy) })
  }

  /** Takes over the outbox policies of `previous` (a state this one replaces). */
  adoptLocal (previous: LedgerState): void {
    for (const [id, stored] of previous.byId) {
      if (stored.seq === undefined && !this.byId.has(id)) this.add(id, stored)
    }
  }

  removeLocal (id: string): void {
    if (this.byId.get(id)?.seq === undefined) this.remove(id)
  }

  has (id: string): boolean { return this.byId.has(id) }
  get (id: string): Policy | undefined { return this.byId.get(id)?.policy }
  seqOf (id: string): number | undefined { return this.byId.get(id)?.seq }
  /** Every policy on the log (outbox policies are not), by id with its seq: what a snapshot holds. */
  * logged (): Iterable<[id: string, seq: number]> {
    for (const [id, stored] of this.byId) if (stored.seq !== undefined) yield [id, stored.seq]
  }

  isLocal (id: string): boolean { const s = this.byId.get(id); return s !== undefined && s.seq === undefined }

  types (): string[] { return [...this.byType.keys()].sort() }
  /** how many policies of `type` the state holds */
  countOfType (type: string): number { return this.byType.get(type)?.size ?? 0 }

  * policiesOfType (type: string): Iterable<Policy> {
    for (const id of this.byType.get(type) ?? []) {
      this.stats.scanned++
      yield this.byId.get(id)!.policy
    }
  }

  * all (): Iterable<Policy> {
    for (const type of this.byType.keys()) yield * this.policiesOfType(type)
  }

  /** Policies of `type` whose top-level `field` equals `value` (case-insensitive), by index. */
  * lookup (type: string, field: string, value: unknown): Iterable<Policy> {
    const key = indexKey(value)
    if (key === undefined) return
    for (const id of idsOf(this.index(type, field).get(key))) yield this.byId.get(id)!.policy
  }

  findByName (type: string, name: string): Policy | undefined {
    for (const policy of this.lookup(type, 'name', name)) {
      if (policyBody(policy).name === name) return policy
    }
    return undefined
  }

  /** The policy as readers see it, with `ledger` set. */
  view (policy: Policy): Policy {
    const id = String(policyBody(policy).id)
    return withLedgerScope(policy, this.isLocal(id) ? 'local' : 'global')
  }

  private index (type: string, field: string): FieldIndex {
    // a type with no policies has nothing to index: answer empty, keep nothing
    if (!this.byType.has(type)) return EMPTY_INDEX
    let fields = this.fieldIndex.get(type)
    if (fields === undefined) { fields = new Map(); this.fieldIndex.set(type, fields) }
    if (!EAGER.has(field)) this.touchAdhoc(type, field)
    let index = fields.get(field)
    if (index === undefined) {
      // Built once, by one scan of the type; kept current by add/remove afterwards.
      index = new Map()
      fields.set(field, index)
      for (const id of this.byType.get(type) ?? []) {
        this.stats.scanned++
        indexValue(index, policyBody(this.byId.get(id)!.policy)[field], id)
      }
    }
    return index
  }

  /** Marks an on-demand index as just used, dropping the least recently used past the cap. */
  private touchAdhoc (type: string, field: string): void {
    const key = `${type}\u0000${field}`
    this.adhocIndexes.delete(key)
    this.adhocIndexes.set(key, true)
    while (this.adhocIndexes.size > MAX_ADHOC_INDEXES) {
      const oldest = this.adhocIndexes.keys().next().value!
      this.adhocIndexes.delete(oldest)
      const [oldType, oldField] = oldest.split('\u0000')
      this.fieldIndex.get(oldType)?.delete(oldField)
    }
  }

  private add (id: string, stored: Stored): void {
    this.byId.set(id, stored)
    this.shareAuthorKey(policyBody(stored.policy))
    let ids = this.byType.get(stored.type)
    if (ids === undefined) { ids = new Set(); this.byType.set(stored.type, ids) }
    ids.add(id)
    const body = policyBody(stored.policy)
    const fields = this.fieldIndex.get(stored.type)
    if (fields !== undefined) {
      for (const [field, index] of fields) indexValue(index, body[field], id)
    }
    for (const field of EAGER_FIELDS) {
      if (body[field] !== undefined && fields?.has(field) !== true) indexValue(this.index(stored.type, field), body[field], id)
    }
  }

  /**
   * A few keys sign most policies, but each parsed policy holds its own copy of the 64-hex
   * public_key string: point every policy at one copy (an equal string, so nothing changes).
   */
  private shareAuthorKey (body: Record<string, JsonValue>): void {
    const key = body.public_key
    if (typeof key !== 'string') return
    const shared = this.authorKeys.get(key)
    if (shared === undefined) this.authorKeys.set(key, key)
    else body.public_key = shared
  }

  private remove (id: string): void {
    const stored = this.byId.get(id)
    if (stored === undefined) return
    this.byId.delete(id)
    const ids = this.byType.get(stored.type)
    ids?.delete(id)
    const body = policyBody(stored.policy)
    const fields = this.fieldIndex.get(stored.type)
    if (ids?.size === 0) {
      // the type's last policy: its indexes go with it
      this.byType.delete(stored.type)
      this.fieldIndex.delete(stored.type)
      for (const field of fields?.keys() ?? []) this.adhocIndexes.delete(`${stored.type}\u0000${field}`)
      return
    }
    for (const [field, index] of fields ?? []) {
      const key = indexKey(body[field])
      if (key === undefined) continue
      const ids = index.get(key)
      if (ids === id) {
        index.delete(key)
      } else if (typeof ids === 'object') {
        ids.delete(id)
        if (ids.size === 1) index.set(key, ids.values().next().value!)
      }
    }
  }
}

/**
 * value key → the ids holding it: one id as a plain string, more as a Set. Most indexed values
 * (names, ids) are unique, and a Set per policy cost ~100 bytes each at 100,000 policies.
 */
type FieldIndex = Map<string, string | Set<string>>

/** What a lookup on a type with no policies reads; never written to (index() returns it only for such types). */
const EMPTY_INDEX: FieldIndex = new Map()

function idsOf (ids: string | Set<string> | undefined): Iterable<string> {
  return ids === undefined ? [] : typeof ids === 'string' ? [ids] : ids
}

function indexValue (index: FieldIndex, value: JsonValue | undefined, id: string): void {
  const key = indexKey(value)
  if (key === undefined) return
  const ids = index.get(key)
  if (ids === undefined) index.set(key, id)
  else if (typeof ids === 'string') { if (ids !== id) index.set(key, new Set([ids, id])) } else ids.add(id)
}
