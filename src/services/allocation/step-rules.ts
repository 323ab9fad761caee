import type { NodeLease, Unplaced } from './placement.js'

/** What a step of placement places (sub-accounts, profiles), where (slaves, workers), and how it reads their assignments. */
export interface PlacerUnit { id: string, name: string }
export interface PlacerNode { name: string, slots: number }
export interface PlacerAssignment { id: string, unit: string, node: string, unitId?: string }

/** The rules of one step (see incremental.ts for the two). */
export interface StepRules<U extends PlacerUnit, N extends PlacerNode> {
  type: Unplaced['type']
  /** why the assignment no longer holds (before the one-per-unit check), and whether its unit is gone */
  check: (a: PlacerAssignment, unit: U | undefined, node: N | undefined, lease: NodeLease) => { reason?: string, gone: boolean }
  /** whether an assignment that no longer holds stays anyway (a held profile's) */
  keeps: (unit: U | undefined) => boolean
  twice: (unit: string) => string
  /** why the unit is not placed before any node is looked at (a held profile), or undefined */
  blocked: (unit: U) => string | undefined
  /** the pool the unit is placed from, or why it has none */
  pool: (unit: U) => { key: string } | { reason: string }
  /** the pools a node belongs to */
  poolsOf: (node: N) => string[]
  noCandidate: (unit: U) => string
  waitingFor: (node: string) => string
  unknown: string
}

export interface StepRound<U> {
  deletes: Array<{ id: string, reason: string }>
  /** units placed this round, in name order, with their nodes */
  puts: Array<{ unit: U, node: string }>
  /** units whose node (assignment or this round's put) changed since the last round */
  moved: Set<string>
}
