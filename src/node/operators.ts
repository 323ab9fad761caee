import type { Logger } from '../base/logger.js'
import type { Ed25519Signer } from '../policies/keys.js'
import type { LeaseProtocol } from '../protocols/lease/index.js'
import type { MasterList } from '../services/master-list.js'
import { Operator, type OperatorOptions, ProfileSource, type ReplicaView, SubaccountSource } from '../services/operator/index.js'
import type { NodeConfig } from './config.js'

/**
 * `run operator`'s supervisor for a role: a worker runs one process per profile assigned to
 * it (PROFILE_RUNNER_<KIND>), a slave one per SUBACCOUNT_PROCESSES kind for each sub-account
 * assigned to it (SUBACCOUNT_RUNNER_<KIND>; none listed: it runs nothing but still holds its
 * lease, which placement requires of every slave). The same Operator keeps either's lease.
 * A light worker's reads its LightReplica, and checks each grant with it (checkGrant).
 */
export function newOperator (role: 'worker' | 'slave', deps: { config: NodeConfig, ledger: ReplicaView, checkGrant?: OperatorOptions['checkGrant'], lease: LeaseProtocol, masters: MasterList, signer: Ed25519Signer, log: Logger }): Operator {
  const { config, ledger, log } = deps
  const source = role === 'worker'
    // the signer opens the profile settings the master sealed to this worker in its assignments
    ? new ProfileSource({ ledger, workerName: config.nodeName, signer: deps.signer, runners: config.profileRunners, log })
    : new SubaccountSource({ ledger, slaveName: config.nodeName, runners: config.subaccountRunners, log })
  return new Operator({ ledger, lease: deps.lease, masters: deps.masters, source, stopGraceMs: config.profileStopGrace.ms, log, ...(deps.checkGrant === undefined ? {} : { checkGrant: deps.checkGrant }) })
}

/** The kinds `run operator` runs on this role, for its answer. */
export function operatorKinds (role: 'worker' | 'slave', config: NodeConfig): string[] {
  return role === 'worker' ? config.profileKinds : Object.keys(config.subaccountRunners)
}
