import type { Multiaddr } from '@multiformats/multiaddr'
import type { Logger } from '../base/logger.js'
import type { Ledger } from '../ledger/ledger.js'
import { policyBody } from '../policies/policy.js'
import type { LightProtocol } from '../protocols/light/index.js'
import { LightReplica, type LightSource } from '../services/light/light-replica.js'

export type { LightReplica, Multiaddr }
import { LightSync } from '../services/light/light-sync.js'
import { type MasterList, tcpAddress } from '../services/master-list.js'
import type { NodeMetrics } from '../services/metrics.js'

/**
 * LEDGER_MODE=light on a worker: the node's ledger (opened on a store of its own, never
 * synced) keeps only meta; a LightReplica fills its state with the policies this worker
 * needs, each with an inclusion proof, and a LightSync stands where a full replica's
 * Replicator would. The sources: the worker's slave (as its held declaration says), then the
 * masters (LEDGER_CONN and those its held `master`/`master_key` policies declare).
 */
export function startLight (opts: {
  worker: string
  ledger: Ledger
  light: LightProtocol
  masters: MasterList
  metrics: NodeMetrics
  log: Logger
  join?: (target: Multiaddr) => Promise<void>
}): { replica: LightReplica, sync: LightSync } {
  const { ledger, worker, masters } = opts
  // a store this node held as a full replica is not the light worker's: it starts empty
  ledger.state.reset()
  const log = opts.log.child({ service: 'light' })
  const replica: LightReplica = new LightReplica({
    worker,
    state: ledger.state,
    store: ledger.store,
    light: opts.light,
    sources: () => lightSources(replica, worker, masters),
    log,
    onRefused: what => { opts.metrics.lightRefused.inc({ what }) }
  })
  return { replica, sync: new LightSync({ replica, masters, log, join: opts.join }) }
}

/** The worker's slave first (it relays), then every master, the current one first. */
function lightSources (replica: LightReplica, worker: string, masters: MasterList): LightSource[] {
  const sources: LightSource[] = []
  const declaration = replica.state.findByName('worker', worker)
  const slaveName = declaration === undefined ? undefined : policyBody(declaration).slave
  const slave = typeof slaveName === 'string' ? replica.state.findByName('slave', slaveName) : undefined
  if (slave !== undefined) {
    const s = policyBody(slave)
    const ip = s.ip ?? s.local_ip
    if (typeof ip === 'string' && (typeof s.port === 'number' || typeof s.port === 'string')) sources.push({ name: `slave ${String(slaveName)} at ${ip}:${s.port}`, target: tcpAddress(`${ip}:${s.port}`) })
  }
  const addresses = masters.addresses
  const current = masters.current
  for (const address of [current, ...addresses.filter(a => a !== current)]) sources.push({ name: `master at ${address}`, target: tcpAddress(address) })
  return sources
}
