import { errorMessage } from '../../base/errors.js'
import type { ReplicaView } from './replica-view.js'
import type { Logger } from '../../base/logger.js'
import { type Policy, policyBody } from '../../policies/policy.js'
import { type JsonObject, type SealKey, isSealedBox, openSealed } from '../../policies/seal.js'
import { assignmentContext, hasSettings } from '../../policies/sealed-settings.js'
import { heartbeatProof } from '../../policies/heartbeat-proof.js'
import type { Signer } from '../../policies/keys.js'
import { AssignmentWarnings } from './assignment-warnings.js'
import type { ProcessSource } from './source.js'
import type { ProcessSpec, ProcessStatus } from './supervised-process.js'

/**
 * A worker's processes: one per profile assigned to it on the ledger, running
 * PROFILE_RUNNER_<KIND> with the profile (its settings opened from the assignment's box) in
 * its environment.
 */
export class ProfileSource implements ProcessSource {
  readonly role = 'worker'
  readonly label = 'Profiles'
  readonly warned: AssignmentWarnings
  /**
   * Per assignment id: its settings, opened, or why they cannot be. An assignment never
   * changes (its id is its content's hash), so each box is opened once; entries go with their
   * assignment. The plain settings live here and in the process's spec, nowhere else.
   */
  private readonly opened = new Map<string, { settings: JsonObject } | { problem: string }>()

  constructor (private readonly opts: {
    ledger: ReplicaView
    workerName: string
    /** the worker's identity key: it opens the profile settings the master sealed to this worker, and signs its runners' heartbeat proofs */
    signer: SealKey & Signer
    /** kind → command (PROFILE_RUNNER_<KIND>) */
    runners: Record<string, string>
    log: Logger
  }) {
    this.warned = new AssignmentWarnings(opts.log)
  }

  get nodeName (): string { return this.opts.workerName }
  get runsAnything (): boolean { return Object.keys(this.opts.runners).length > 0 }

  desired (): { wanted: Map<string, ProcessSpec>, refused: Map<string, ProcessStatus> } {
    const wanted = new Map<string, ProcessSpec>()
    const refused = new Map<string, ProcessStatus>()
    const present = new Set<string>()
    for (const assignment of this.opts.ledger.state.lookup('assignment', 'worker', this.opts.workerName)) {
      const a = policyBody(assignment)
      if (a.worker !== this.opts.workerName || typeof a.profile !== 'string') continue
      present.add(String(a.id))
      const spec = this.specOf(assignment, refused)
      if (spec !== undefined) wanted.set(spec.id, spec)
    }
    // a deleted assignment never comes back (ids are content hashes with an epoch)
    this.warned.retainOnly(present)
    for (const id of this.opened.keys()) if (!present.has(id)) this.opened.delete(id)
    return { wanted, refused }
  }

  private specOf (assignment: Policy, refused: Map<string, ProcessStatus>): ProcessSpec | undefined {
    const { ledger } = this.opts
    const a = policyBody(assignment)
    const assignmentId = String(a.id)
    const profile = typeof a.profile_id === 'string' ? ledger.state.get(a.profile_id) : ledger.state.findByName('profile', String(a.profile))
    const problem = (text: string): undefined => {
      this.warned.warn(assignmentId, text, { profile: a.profile })
      return undefined
    }
    if (profile === undefined) return problem('assigned profile is not in the replica yet')
    const p = policyBody(profile)
    const kind = String(p.kind).toLowerCase()
    const command = this.opts.runners[kind]
    if (command === undefined) return problem(`no PROFILE_RUNNER for kind '${kind}' on this worker`)
    const slaveName = typeof a.slave === 'string' ? a.slave : undefined
    const slave = slaveName === undefined ? undefined : ledger.state.findByName('slave', slaveName)
    if (slave === undefined) return problem(`the profile's slave '${String(slaveName)}' is not in the replica`)
    const s = policyBody(slave)
    const settings = this.settingsOf(assignment, profile)
    if ('problem' in settings) {
      refused.set(assignmentId, {
        assignment: assignmentId, profile_id: String(p.id), name: String(p.name), kind, state: 'ERROR', pid: null,
        restarts: 0, uptime_seconds: null, last_exit: null, next_restart_ms: null, problem: settings.problem
      })
      return problem(settings.problem)
    }
    return {
      id: assignmentId,
      assignmentId,
      unit: 'profile',
      unitId: String(p.id),
      name: String(p.name),
      kind,
      command,
      env: {
        PROFILE_ID: String(p.id),
        PROFILE_NAME: String(p.name),
        PROFILE_KIND: kind,
        PROFILE_SETTINGS: JSON.stringify(settings.settings),
        SLAVE_URL: `http://${String(s.ip)}:${String(s.rest_port)}`,
        WORKER_NAME: this.opts.workerName,
        HEARTBEAT_PROOF: heartbeatProof(this.opts.signer, String(p.id), this.opts.workerName)
      }
    }
  }

  /**
   * The settings the master sealed to this worker in the assignment, opened with this
   * worker's key (docs/workers-and-allocation.md, "Sealed settings"). A box this worker
   * cannot open (sealed to another worker, tampered with, moved from another assignment)
   * means the profile does not start: running it without its settings could only fail, or
   * act with none. The problem never quotes the settings.
   */
  private settingsOf (assignment: Policy, profile: Policy): { settings: JsonObject } | { problem: string } {
    const a = policyBody(assignment)
    const id = String(a.id)
    const known = this.opened.get(id)
    if (known !== undefined) return known
    let result: { settings: JsonObject } | { problem: string }
    if (a.settings === undefined) {
      result = hasSettings(policyBody(profile).settings)
        ? { problem: 'not started: the profile has settings, but its assignment carries none sealed to this worker' }
        : { settings: {} }
    } else if (!isSealedBox(a.settings)) {
      result = { problem: 'not started: the assignment\'s settings are not a sealed box' }
    } else {
      try {
        const context = assignmentContext(String(a.profile), String(a.profile_id), String(a.worker))
        result = { settings: openSealed(a.settings, this.opts.signer, context) }
      } catch (err) {
        result = { problem: `not started: its settings do not open with this worker's key: ${errorMessage(err)}` }
      }
    }
    this.opened.set(id, result)
    return result
  }
}
