import type { Entry } from '../../ledger/entry.js'
import type { LedgerState } from '../../ledger/state.js'
import { type Policy, policyBody, policyId, policyType } from '../../policies/policy.js'
import type { LeaseRole } from '../../protocols/lease/index.js'
import type { LeaseTable } from './lease-table.js'

/** An assignment on the ledger: which unit (profile or sub-account) it put on which node. */
interface Placed { role: LeaseRole, node: string, unit: string, name: string }

/** A unit whose assignment went away at `seq`, not yet shown stopped by its node. */
export interface Release extends Placed { seq: number }

/**
 * Units whose assignment went away for a reason their node hears only through the ledger (its
 * declaration deleted, a pin changed, the profile replaced): the node may have started the
 * unit's process after its last lease renewal, so no renewal has listed it yet. Until the node
 * shows it stopped (LeaseTable.released: a renewal at a head past the delete without it, or
 * its lease lapsed), placement treats it as still running there and places it nowhere else.
 */
export class Releases {
  /** assignment id → what it placed */
  private readonly placed = new Map<string, Placed>()
  private pending: Release[] = []

  /** Starts from the assignments already on the ledger. */
  constructor (state: LedgerState) {
    for (const policy of state.policiesOfType('assignment')) this.place(policy, state)
  }

  /** Follows the ledger: assignments put, and those deleted (each a release to wait for). */
  note (entries: readonly Entry[], state: LedgerState): void {
    for (const entry of entries) {
      if (entry.op === 'put' && policyType(entry.policy) === 'assignment') {
        this.place(entry.policy, state)
      } else if (entry.op === 'delete') {
        const target = String(policyBody(entry.policy).policy_id)
        const placed = this.placed.get(target)
        if (placed === undefined) continue
        this.placed.delete(target)
        this.pending.push({ ...placed, seq: entry.seq })
      }
    }
  }

  /** The releases still pending, after dropping those their node has shown done. */
  check (leases: LeaseTable): Release[] {
    this.pending = this.pending.filter(r => !leases.released(r.role, r.node, r.unit, r.seq))
    return this.pending
  }

  /** Whether a release waits on `node` (its renewals may end it: a round is due after each). */
  waitsOn (role: LeaseRole, node: string): boolean {
    return this.pending.some(r => r.role === role && r.node === node)
  }

  private place (policy: Policy, state: LedgerState): void {
    const b = policyBody(policy)
    if (typeof b.profile === 'string' && typeof b.worker === 'string' && typeof b.profile_id === 'string') {
      this.placed.set(policyId(policy), { role: 'worker', node: b.worker, unit: b.profile_id, name: b.profile })
    } else if (b.profile === undefined && typeof b.subaccount === 'string' && typeof b.slave === 'string') {
      const sub = state.findByName('subaccount', b.subaccount)
      if (sub !== undefined) this.placed.set(policyId(policy), { role: 'slave', node: b.slave, unit: policyId(sub), name: b.subaccount })
    }
  }
}
