/**
 * Where sub-accounts and profiles go: a pure function from what the ledger and the leases say
 * to the assignment writes that fix it, so the rules can be read (and tested) in one place.
 *
 * Rules (after MassProspecting's allocate.rb, with safe moves):
 * - a sub-account goes to its pinned slave (`subaccount.slave`) or else to the slave with the
 *   most free slots; a profile goes to a worker of its sub-account's slave that runs its kind,
 *   holds a live lease, is not draining and has a free slot (most free slots first).
 * - an assignment that no longer holds (profile or sub-account gone or replaced, worker gone,
 *   lapsed or draining, kind or slave no longer matching) is deleted.
 * - a profile that some live worker still reports running is not placed anywhere else until
 *   that worker reports it stopped, or its lease lapses past TTL + grace: one profile never
 *   runs on two workers at once. Until a worker has renewed its lease once after the master
 *   started, it may be running anything, so no profile is placed while such a worker is live.
 * - slaves hold leases too (they run processes per sub-account), under the same rules: a
 *   sub-account leaves a slave whose lease lapsed or which drains, is placed elsewhere only once
 *   no live slave reports it running, waits while some slave's lease is unknown, and goes only
 *   to a slave with a live lease that is not draining. Its profiles follow: their assignments
 *   name the old slave, no longer the sub-account's, and move to workers of the new one.
 * Ties go to the name that sorts first, so the same input always gives the same plan.
 */

export interface SlaveInfo { name: string, slots: number }
export interface WorkerInfo { name: string, slave: string | undefined, slots: number, kinds: string[] }
export interface SubaccountInfo { id: string, name: string, slave: string | undefined }
/**
 * `held`: why this master cannot open the profile's sealed settings. Such a profile is not
 * placed anew (the new worker's copy could not be sealed), and the assignment it has stays
 * where it is until a master that can open it decides otherwise: a new writer that lacks a
 * settings copy does not stop a running profile.
 */
export interface ProfileInfo { id: string, name: string, kind: string, subaccount: string, held?: string }
export interface SubaccountAssignment { id: string, subaccount: string, slave: string }
export interface ProfileAssignment { id: string, profile: string, profileId: string | undefined, worker: string }

/** What the master knows of a worker's (or a slave's) lease. */
export interface NodeLease {
  /** `live`: renewed within TTL + grace; `expired`: lapsed past it; `unknown`: not heard from since the master started, not lapsed yet */
  state: 'live' | 'expired' | 'unknown'
  draining: boolean
  /** profile ids the worker (sub-account ids the slave) reported as possibly running */
  running: ReadonlySet<string>
}
export type WorkerLease = NodeLease

export interface PlacementInput {
  slaves: SlaveInfo[]
  workers: WorkerInfo[]
  subaccounts: SubaccountInfo[]
  profiles: ProfileInfo[]
  subaccountAssignments: SubaccountAssignment[]
  profileAssignments: ProfileAssignment[]
  lease: (worker: string) => NodeLease
  /** what every live lease reports, declared worker or not (a deleted declaration does not stop a process) */
  reports: Array<{ worker: string, running: ReadonlySet<string> }>
  slaveLease: (slave: string) => NodeLease
  /** the same for slaves: the sub-account ids each live slave runs processes for */
  slaveReports: Array<{ slave: string, running: ReadonlySet<string> }>
  /**
   * Profiles (by name) whose assignment on `node` went away and that the node has not shown
   * stopped yet (see releases.ts): treated as still running there
   */
  releasing?: Array<{ node: string, name: string }>
  /** the same for sub-accounts on slaves */
  slaveReleasing?: Array<{ node: string, name: string }>
}

export type NewAssignment =
  | { subaccount: string, slave: string }
  | { profile: string, profile_id: string, kind: string, subaccount: string, slave: string, worker: string }

export interface Unplaced { type: 'subaccount' | 'profile', name: string, reason: string }

export interface Plan {
  /** assignment ids to delete, with why */
  deletes: Array<{ id: string, reason: string }>
  puts: NewAssignment[]
  unplaced: Unplaced[]
  /** profiles waiting for a worker to report them stopped before they can move */
  moving: Array<{ profile: string, from: string }>
  /** sub-accounts waiting for a slave to report their processes stopped */
  movingSubaccounts: Array<{ subaccount: string, from: string }>
}

const byName = <T extends { name: string }>(a: T, b: T) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0

/** name → item, the last of a name winning */
function byNameMap<T extends { name: string }> (items: T[]): Map<string, T> {
  const map = new Map<string, T>()
  for (const item of items) map.set(item.name, item)
  return map
}

export function planPlacement (input: PlacementInput): Plan {
  const plan: Plan = { deletes: [], puts: [], unplaced: [], moving: [], movingSubaccounts: [] }
  const slaves = byNameMap(input.slaves)
  const workers = byNameMap(input.workers)
  const subaccounts = byNameMap(input.subaccounts)
  // per profile name: the profile, and the worker it holds or is given in this plan (one map
  // lookup per assignment: a fleet holds tens of thousands)
  const profiles = new Map<string, { profile: ProfileInfo, worker?: string }>()
  for (const profile of input.profiles) profiles.set(profile.name, { profile })

  // ---- sub-accounts → slaves ----
  const slaveOf = new Map<string, string>()
  const slaveLoad = new Map<string, number>()
  const slaveReleasing = [...(input.slaveReleasing ?? [])]
  const addSlaveLoad = (slave: string) => { slaveLoad.set(slave, (slaveLoad.get(slave) ?? 0) + 1) }
  for (const a of input.subaccountAssignments) {
    const sub = subaccounts.get(a.subaccount)
    const lease = input.slaveLease(a.slave)
    let reason: string | undefined
    if (sub === undefined) reason = `sub-account '${a.subaccount}' is gone`
    else if (!slaves.has(a.slave)) reason = `slave '${a.slave}' is gone`
    else if (lease.state === 'expired') reason = `slave '${a.slave}' lease lapsed`
    else if (lease.draining) reason = `slave '${a.slave}' is draining`
    else if (sub.slave !== undefined && sub.slave !== a.slave) reason = `sub-account '${a.subaccount}' is pinned to slave '${sub.slave}'`
    else if (slaveOf.has(a.subaccount)) reason = `sub-account '${a.subaccount}' is assigned twice`
    if (reason !== undefined) {
      plan.deletes.push({ id: a.id, reason })
      // the slave hears of this delete through the ledger only: until it shows the processes stopped, they may run
      if (lease.state !== 'expired') slaveReleasing.push({ node: a.slave, name: a.subaccount })
      continue
    }
    slaveOf.set(a.subaccount, a.slave)
    addSlaveLoad(a.slave)
  }
  // A sub-account a live slave still runs processes for without (any longer) holding its
  // assignment: it keeps the slave's slot and cannot go anywhere else yet.
  const subStillOn = stillRunning(input.slaveReports.map(r => ({ node: r.slave, running: r.running })), input.subaccounts, slaveOf, addSlaveLoad)
  waitForReleases(subStillOn, slaveReleasing, slaveOf)
  const someSlaveUnknown = input.slaves.some(s => input.slaveLease(s.name).state === 'unknown')
  for (const sub of [...subaccounts.keys()].filter(name => !slaveOf.has(name)).sort().map(name => subaccounts.get(name)!)) {
    if (slaveOf.has(sub.name)) continue
    const from = subStillOn.get(sub.name)
    if (from !== undefined) {
      plan.movingSubaccounts.push({ subaccount: sub.name, from })
      plan.unplaced.push({ type: 'subaccount', name: sub.name, reason: `waiting for slave '${from}' to stop its processes` })
      continue
    }
    if (someSlaveUnknown) {
      plan.unplaced.push({ type: 'subaccount', name: sub.name, reason: 'waiting for every live slave to renew its lease once since the master started' })
      continue
    }
    const free = (s: SlaveInfo) => s.slots - (slaveLoad.get(s.name) ?? 0)
    const candidates = (sub.slave !== undefined ? [slaves.get(sub.slave)].filter((s): s is SlaveInfo => s !== undefined) : [...slaves.values()])
      .filter(s => free(s) > 0)
      .filter(s => { const lease = input.slaveLease(s.name); return lease.state === 'live' && !lease.draining })
      .sort((a, b) => free(b) - free(a) || byName(a, b))
    const chosen = candidates[0]
    if (chosen === undefined) {
      plan.unplaced.push({ type: 'subaccount', name: sub.name, reason: sub.slave !== undefined ? `pinned slave '${sub.slave}' has no free slot, no live lease, is draining or is not declared` : 'no live slave has a free slot' })
      continue
    }
    plan.puts.push({ subaccount: sub.name, slave: chosen.name })
    slaveOf.set(sub.name, chosen.name)
    addSlaveLoad(chosen.name)
  }

  // ---- profiles → workers ----
  const workerOf = { get: (name: string) => profiles.get(name)?.worker }
  // per worker name, what the assignments read of it, looked up once (a fleet holds many
  // more assignments than workers)
  const views = new Map<string, { worker: WorkerInfo | undefined, lease: NodeLease, load: number }>()
  const view = (name: string) => {
    let v = views.get(name)
    if (v === undefined) { v = { worker: workers.get(name), lease: input.lease(name), load: 0 }; views.set(name, v) }
    return v
  }
  const releasing = [...(input.releasing ?? [])]
  const addLoad = (worker: string) => { view(worker).load++ }
  for (const a of input.profileAssignments) {
    const entry = profiles.get(a.profile)
    const profile = entry?.profile
    const v = view(a.worker)
    const { worker, lease } = v
    let reason: string | undefined
    const gone = profile === undefined || (a.profileId !== undefined && a.profileId !== profile.id)
    if (gone) reason = `profile '${a.profile}' is gone or was replaced`
    else if (worker === undefined) reason = `worker '${a.worker}' is gone`
    else if (lease.state === 'expired') reason = `worker '${a.worker}' lease lapsed`
    else if (lease.draining) reason = `worker '${a.worker}' is draining`
    else if (!worker.kinds.includes(profile.kind)) reason = `worker '${a.worker}' does not run '${profile.kind}' profiles`
    else if (worker.slave === undefined || worker.slave !== slaveOf.get(profile.subaccount)) reason = `worker '${a.worker}' is not under the slave of sub-account '${profile.subaccount}'`
    const twice = reason === undefined && entry!.worker !== undefined
    if (twice) reason = `profile '${a.profile}' is assigned twice`
    // a held profile keeps its assignment for any reason but being gone or assigned twice
    const kept = profile?.held !== undefined && reason !== undefined && !gone && !twice
    if (reason !== undefined && !kept) {
      plan.deletes.push({ id: a.id, reason })
      // the worker hears of this delete through the ledger only (unless its lease lapsed): it
      // may run the profile until it shows it stopped, so it goes nowhere else in this plan
      if (lease.state !== 'expired') releasing.push({ node: a.worker, name: a.profile })
      continue
    }
    // (held or not gone: the profile is there)
    entry!.worker = a.worker
    v.load++
  }

  // A profile a live worker still runs without (any longer) holding its assignment: it keeps
  // the worker's slot and cannot go anywhere else yet.
  const stillRunningOn = stillRunning(input.reports.map(r => ({ node: r.worker, running: r.running })), input.profiles, workerOf, addLoad)
  waitForReleases(stillRunningOn, releasing, workerOf)
  const someWorkerUnknown = input.workers.some(w => view(w.name).lease.state === 'unknown')
  // a profile's candidates are workers of one slave: grouped once, not filtered from all per profile
  const workersOfSlave = new Map<string, WorkerInfo[]>()
  for (const w of workers.values()) {
    if (w.slave === undefined) continue
    const list = workersOfSlave.get(w.slave)
    if (list === undefined) workersOfSlave.set(w.slave, [w])
    else list.push(w)
  }

  // only profiles without a worker yet are looked at, in name order
  for (const entry of [...profiles.values()].filter(e => e.worker === undefined).sort((a, b) => a.profile.name < b.profile.name ? -1 : 1)) {
    const { profile } = entry
    if (profile.held !== undefined) {
      plan.unplaced.push({ type: 'profile', name: profile.name, reason: `this master cannot open its settings: ${profile.held}` })
      continue
    }
    const from = stillRunningOn.get(profile.name)
    if (from !== undefined) {
      plan.moving.push({ profile: profile.name, from })
      plan.unplaced.push({ type: 'profile', name: profile.name, reason: `waiting for worker '${from}' to stop it` })
      continue
    }
    if (someWorkerUnknown) {
      plan.unplaced.push({ type: 'profile', name: profile.name, reason: 'waiting for every live worker to renew its lease once since the master started' })
      continue
    }
    const slave = slaveOf.get(profile.subaccount)
    if (slave === undefined) {
      plan.unplaced.push({ type: 'profile', name: profile.name, reason: subaccounts.has(profile.subaccount) ? `sub-account '${profile.subaccount}' has no slave yet` : `sub-account '${profile.subaccount}' is not on the ledger` })
      continue
    }
    const free = (w: WorkerInfo) => w.slots - view(w.name).load
    const candidates = (workersOfSlave.get(slave) ?? [])
      .filter(w => w.kinds.includes(profile.kind) && free(w) > 0)
      .filter(w => { const lease = view(w.name).lease; return lease.state === 'live' && !lease.draining })
      .sort((a, b) => free(b) - free(a) || byName(a, b))
    const chosen = candidates[0]
    if (chosen === undefined) {
      plan.unplaced.push({ type: 'profile', name: profile.name, reason: `no live worker of slave '${slave}' with a free slot runs '${profile.kind}' profiles` })
      continue
    }
    plan.puts.push({ profile: profile.name, profile_id: profile.id, kind: profile.kind, subaccount: profile.subaccount, slave, worker: chosen.name })
    entry.worker = chosen.name
    addLoad(chosen.name)
  }
  return plan
}

/**
 * What live nodes report running (ids of units) that is not assigned to them: each such unit
 * takes a slot on its node (addLoad) and stays there until the node reports it stopped.
 * Answers unit name → the node still running it.
 */
function stillRunning (reports: Array<{ node: string, running: ReadonlySet<string> }>, units: Array<{ id: string, name: string }>, assignedTo: { get: (name: string) => string | undefined }, addLoad: (node: string) => void): Map<string, string> {
  const stillOn = new Map<string, string>()
  if (reports.every(r => r.running.size === 0)) return stillOn
  const byId = new Map(units.map(u => [u.id, u]))
  for (const report of [...reports].sort((a, b) => a.node < b.node ? -1 : 1)) {
    for (const id of report.running) {
      const unit = byId.get(id)
      if (unit !== undefined && assignedTo.get(unit.name) === report.node) continue
      addLoad(report.node)
      if (unit !== undefined) stillOn.set(unit.name, report.node)
    }
  }
  return stillOn
}

/** Units whose node has not shown them stopped since their assignment went away count as still running there. */
function waitForReleases (stillOn: Map<string, string>, releasing: Array<{ node: string, name: string }> | undefined, assignedTo: { get: (name: string) => string | undefined }): void {
  for (const { node, name } of releasing ?? []) {
    if (assignedTo.get(name) !== node && !stillOn.has(name)) stillOn.set(name, node)
  }
}
