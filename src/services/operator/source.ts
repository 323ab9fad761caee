import type { LeaseRole } from '../../protocols/lease/index.js'
import type { AssignmentWarnings } from './assignment-warnings.js'
import type { ProcessSpec, ProcessStatus } from './supervised-process.js'

/**
 * What should run on this node, as the Operator asks it at every reconcile: a worker's
 * profiles (ProfileSource) or a slave's sub-account processes (SubaccountSource). The Operator
 * keeps the lease and supervises; a source only reads the replica.
 */
export interface ProcessSource {
  /** the lease's role, and the node's name on its declaration */
  readonly role: LeaseRole
  readonly nodeName: string
  /** `get processes` and log wording: 'Profiles', 'Sub-account processes' */
  readonly label: string
  /** whether any command is configured: with none nothing can run, and no reaper is needed */
  readonly runsAnything: boolean
  /** problems with this node's assignments, each logged once (bounded) */
  readonly warned: AssignmentWarnings
  /**
   * What should run now, by process id, and the rows of what should but does not start (its
   * settings do not open here). Asked only while the lease is valid.
   */
  desired: () => { wanted: Map<string, ProcessSpec>, refused: Map<string, ProcessStatus> }
}
