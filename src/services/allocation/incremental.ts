import type { NodeLease, PlacementInput, Plan, ProfileAssignment, ProfileInfo, SlaveInfo, SubaccountAssignment, SubaccountInfo, WorkerInfo } from './placement.js'
import type { StepRules } from './step-rules.js'
import { UnitPlacer } from './unit-placer.js'

/**
 * Placement kept up to date change by change: the two steps of placement.ts (sub-accounts
 * onto slaves, then profiles onto workers of their sub-account's slave) as UnitPlacers, fed
 * the same inputs a full round reads, one change at a time. `plan()` answers what
 * planPlacement(this.input()) would, looking only at what changed; the allocator runs the full
 * round now and then as a check (allocator.ts).
 */
export class IncrementalPlacement {
  private readonly subaccounts: UnitPlacer<SubaccountInfo, SlaveInfo, SubaccountAssignment>
  private readonly profiles: UnitPlacer<ProfileInfo, WorkerInfo, ProfileAssignment>
  /** sub-account name → names of the profiles under it */
  private readonly profilesOf = new Map<string, Set<string>>()

  constructor () {
    this.subaccounts = new UnitPlacer(subaccountRules(this))
    this.profiles = new UnitPlacer(profileRules(this))
  }

  /** The slave of a sub-account: its assignment that holds, or this round's put. */
  slaveOf (subaccount: string): string | undefined { return this.subaccounts.nodeOf(subaccount) }
  hasSubaccount (name: string): boolean { return this.subaccounts.unit(name) !== undefined }
  hasSlave (name: string): boolean { return this.subaccounts.node(name) !== undefined }

  // ---- inputs (each replaces what was there under the name or id) ----

  setSlave (name: string, slave: SlaveInfo | undefined): void { this.subaccounts.setNode(name, slave) }
  setWorker (name: string, worker: WorkerInfo | undefined): void { this.profiles.setNode(name, worker) }

  setSubaccount (name: string, sub: SubaccountInfo | undefined): void {
    this.subaccounts.setUnit(name, sub)
    // its profiles' reasons name it ("not on the ledger" or "has no slave yet")
    for (const profile of this.profilesOf.get(name) ?? []) this.profiles.recheckUnit(profile)
  }

  setProfile (name: string, profile: ProfileInfo | undefined): void {
    const previous = this.profiles.unit(name)
    if (previous !== undefined) this.profilesOf.get(previous.subaccount)?.delete(name)
    if (profile !== undefined) {
      let names = this.profilesOf.get(profile.subaccount)
      if (names === undefined) { names = new Set(); this.profilesOf.set(profile.subaccount, names) }
      names.add(name)
    }
    this.profiles.setUnit(name, profile)
  }

  putSubaccountAssignment (a: SubaccountAssignment): void { this.subaccounts.putAssignment({ id: a.id, unit: a.subaccount, node: a.slave }, a) }
  putProfileAssignment (a: ProfileAssignment): void {
    this.profiles.putAssignment({ id: a.id, unit: a.profile, node: a.worker, ...(a.profileId !== undefined ? { unitId: a.profileId } : {}) }, a)
  }

  deleteAssignment (id: string): void {
    this.subaccounts.deleteAssignment(id)
    this.profiles.deleteAssignment(id)
  }

  setLease (role: 'worker' | 'slave', name: string, lease: NodeLease | undefined): void {
    if (role === 'worker') this.profiles.setLease(name, lease)
    else this.subaccounts.setLease(name, lease)
  }

  setDefaultLease (state: 'unknown' | 'expired'): void {
    this.subaccounts.setDefaultLease(state)
    this.profiles.setDefaultLease(state)
  }

  setReleasing (role: 'worker' | 'slave', entries: ReadonlyArray<{ node: string, name: string }>): void {
    if (role === 'worker') this.profiles.setReleasing(entries)
    else this.subaccounts.setReleasing(entries)
  }

  /** The next plan looks at every unit again (what the periodic full round compares with). */
  markAll (): void {
    this.subaccounts.markAll()
    this.profiles.markAll()
  }

  // ---- the round ----

  /** A round: the writes that bring the assignments in line (what is unplaced: see unplaced() and moving()). */
  round (): Pick<Plan, 'deletes' | 'puts'> {
    const subs = this.subaccounts.round()
    // profiles under a sub-account whose slave changed: their assignments and pools change
    for (const sub of subs.moved) for (const profile of this.profilesOf.get(sub) ?? []) this.profiles.recheckUnit(profile)
    const profiles = this.profiles.round()
    return {
      deletes: [...subs.deletes, ...profiles.deletes],
      puts: [
        ...subs.puts.map(({ unit, node }) => ({ subaccount: unit.name, slave: node })),
        ...profiles.puts.map(({ unit, node }) => ({ profile: unit.name, profile_id: unit.id, kind: unit.kind, subaccount: unit.subaccount, slave: this.slaveOf(unit.subaccount)!, worker: node }))
      ]
    }
  }

  /** Units not placed, with why, as of the last round: sub-accounts then profiles, each by name. */
  unplaced (): Plan['unplaced'] { return [...this.subaccounts.unplaced(), ...this.profiles.unplaced()] }
  moving (): Plan['moving'] { return this.profiles.moving().map(({ unit, from }) => ({ profile: unit, from })) }
  movingSubaccounts (): Plan['movingSubaccounts'] { return this.subaccounts.moving().map(({ unit, from }) => ({ subaccount: unit, from })) }

  /** A round, with everything a full round's plan holds. */
  plan (): Plan {
    return { ...this.round(), unplaced: this.unplaced(), moving: this.moving(), movingSubaccounts: this.movingSubaccounts() }
  }

  /** Everything a full round reads, as planPlacement takes it (the periodic check, tests). */
  input (): PlacementInput {
    const s = this.subaccounts
    const p = this.profiles
    return {
      slaves: [...s.allNodes()],
      workers: [...p.allNodes()],
      subaccounts: [...s.allUnits()],
      profiles: [...p.allUnits()],
      subaccountAssignments: s.assignmentsInOrder(),
      profileAssignments: p.assignmentsInOrder(),
      lease: name => p.leaseOf(name),
      reports: p.reports().map(r => ({ worker: r.node, running: r.running })),
      releasing: p.releasingEntries(),
      slaveLease: name => s.leaseOf(name),
      slaveReports: s.reports().map(r => ({ slave: r.node, running: r.running })),
      slaveReleasing: s.releasingEntries()
    }
  }
}

function subaccountRules (placement: IncrementalPlacement): StepRules<SubaccountInfo, SlaveInfo> {
  return {
    type: 'subaccount',
    check: (a, sub, slave, lease) => {
      if (sub === undefined) return { reason: `sub-account '${a.unit}' is gone`, gone: true }
      if (slave === undefined) return { reason: `slave '${a.node}' is gone`, gone: false }
      if (lease.state === 'expired') return { reason: `slave '${a.node}' lease lapsed`, gone: false }
      if (lease.draining) return { reason: `slave '${a.node}' is draining`, gone: false }
      if (sub.slave !== undefined && sub.slave !== a.node) return { reason: `sub-account '${a.unit}' is pinned to slave '${sub.slave}'`, gone: false }
      return { gone: false }
    },
    keeps: () => false,
    twice: name => `sub-account '${name}' is assigned twice`,
    blocked: () => undefined,
    pool: sub => ({ key: sub.slave === undefined ? 'all' : `pin\0${sub.slave}` }),
    poolsOf: slave => ['all', `pin\0${slave.name}`],
    noCandidate: sub => sub.slave !== undefined ? `pinned slave '${sub.slave}' has no free slot, no live lease, is draining or is not declared` : 'no live slave has a free slot',
    waitingFor: from => `waiting for slave '${from}' to stop its processes`,
    unknown: 'waiting for every live slave to renew its lease once since the master started'
  }
}

function profileRules (placement: IncrementalPlacement): StepRules<ProfileInfo, WorkerInfo> {
  return {
    type: 'profile',
    check: (a, profile, worker, lease) => {
      if (profile === undefined || (a.unitId !== undefined && a.unitId !== profile.id)) return { reason: `profile '${a.unit}' is gone or was replaced`, gone: true }
      if (worker === undefined) return { reason: `worker '${a.node}' is gone`, gone: false }
      if (lease.state === 'expired') return { reason: `worker '${a.node}' lease lapsed`, gone: false }
      if (lease.draining) return { reason: `worker '${a.node}' is draining`, gone: false }
      if (!worker.kinds.includes(profile.kind)) return { reason: `worker '${a.node}' does not run '${profile.kind}' profiles`, gone: false }
      if (worker.slave === undefined || worker.slave !== placement.slaveOf(profile.subaccount)) return { reason: `worker '${a.node}' is not under the slave of sub-account '${profile.subaccount}'`, gone: false }
      return { gone: false }
    },
    keeps: profile => profile?.held !== undefined,
    twice: name => `profile '${name}' is assigned twice`,
    blocked: profile => profile.held !== undefined ? `this master cannot open its settings: ${profile.held}` : undefined,
    pool: profile => {
      const slave = placement.slaveOf(profile.subaccount)
      if (slave === undefined) return { reason: placement.hasSubaccount(profile.subaccount) ? `sub-account '${profile.subaccount}' has no slave yet` : `sub-account '${profile.subaccount}' is not on the ledger` }
      return { key: `${slave}\0${profile.kind}` }
    },
    poolsOf: worker => worker.slave === undefined ? [] : [...new Set(worker.kinds)].map(kind => `${worker.slave!}\0${kind}`),
    noCandidate: profile => `no live worker of slave '${placement.slaveOf(profile.subaccount)!}' with a free slot runs '${profile.kind}' profiles`,
    waitingFor: from => `waiting for worker '${from}' to stop it`,
    unknown: 'waiting for every live worker to renew its lease once since the master started'
  }
}
