import type { LedgerState } from '../../ledger/state.js'

/**
 * What an Operator and its sources read of the node's ledger: the live policies, the head the
 * lease's minSeq is compared with, an event when either changed, and where the node keeps its
 * drain across restarts. A full replica (Ledger) is one; a light worker's LightReplica
 * (src/services/light/) is another, holding only the policies this worker needs.
 */
export interface ReplicaView {
  readonly state: LedgerState
  readonly head: { readonly seq: number }
  readonly store: {
    getMeta: (key: string) => Promise<string | undefined>
    setMeta: (key: string, value: string) => Promise<void>
  }
  on: (event: 'appended', listener: () => void) => unknown
  off: (event: 'appended', listener: () => void) => unknown
}
