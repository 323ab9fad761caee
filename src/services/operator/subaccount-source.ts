import type { ReplicaView } from './replica-view.js'
import type { Logger } from '../../base/logger.js'
import { policyBody } from '../../policies/policy.js'
import { AssignmentWarnings } from './assignment-warnings.js'
import type { ProcessSource } from './source.js'
import type { ProcessSpec, ProcessStatus } from './supervised-process.js'

/**
 * A slave's processes (MassProspecting's ingest, import, plan, rule, timeline): for each
 * sub-account assigned to this slave on the ledger, one process per SUBACCOUNT_PROCESSES kind,
 * running SUBACCOUNT_RUNNER_<KIND> with the sub-account in its environment. A sub-account's
 * settings are not sealed (unlike a profile's): they are handed over as the ledger holds them.
 */
export class SubaccountSource implements ProcessSource {
  readonly role = 'slave'
  readonly label = 'Sub-account processes'
  readonly warned: AssignmentWarnings

  constructor (private readonly opts: {
    ledger: ReplicaView
    slaveName: string
    /** kind → command (SUBACCOUNT_RUNNER_<KIND>), in SUBACCOUNT_PROCESSES order */
    runners: Record<string, string>
    log: Logger
  }) {
    this.warned = new AssignmentWarnings(opts.log)
  }

  get nodeName (): string { return this.opts.slaveName }
  get runsAnything (): boolean { return Object.keys(this.opts.runners).length > 0 }

  desired (): { wanted: Map<string, ProcessSpec>, refused: Map<string, ProcessStatus> } {
    const { ledger, slaveName, runners } = this.opts
    const wanted = new Map<string, ProcessSpec>()
    const present = new Set<string>()
    for (const assignment of ledger.state.lookup('assignment', 'slave', slaveName)) {
      const a = policyBody(assignment)
      // a profile's assignment names its slave too: only the sub-account's own counts here
      if (a.slave !== slaveName || a.profile !== undefined || typeof a.subaccount !== 'string') continue
      const assignmentId = String(a.id)
      present.add(assignmentId)
      const sub = ledger.state.findByName('subaccount', a.subaccount)
      if (sub === undefined) {
        this.warned.warn(assignmentId, 'assigned sub-account is not in the replica yet', { subaccount: a.subaccount })
        continue
      }
      const s = policyBody(sub)
      const subId = String(s.id)
      const settings = s.settings !== null && typeof s.settings === 'object' && !Array.isArray(s.settings) ? s.settings : {}
      for (const [kind, command] of Object.entries(runners)) {
        // the sub-account's id in the process id: a replaced sub-account (new settings) restarts its processes
        const id = `${assignmentId}/${subId}/${kind}`
        wanted.set(id, {
          id,
          assignmentId,
          unit: 'subaccount',
          unitId: subId,
          name: a.subaccount,
          kind,
          command,
          env: {
            SUBACCOUNT_NAME: a.subaccount,
            SUBACCOUNT_ID: subId,
            SUBACCOUNT_SETTINGS: JSON.stringify(settings),
            PROCESS_KIND: kind,
            SLAVE_NAME: slaveName
          }
        })
      }
    }
    this.warned.retainOnly(present)
    return { wanted, refused: new Map() }
  }
}
