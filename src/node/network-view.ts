import { policyBody } from '../policies/policy.js'
import { NODE_POLICY_TYPES } from '../policies/schemas.js'
import type { LeaseRow } from '../services/allocation/lease-table.js'
import type { NetworkData, NetworkNode } from '../commands/port.js'
import type { NodeView } from './status.js'

const text = (v: unknown): string | null => typeof v === 'string' && v !== '' ? v : null

/**
 * `GET /v1/network`: every node the ledger declares, and what this node knows of each. A
 * master knows most: the head each replica holds (its sync server saw the replica's requests
 * and what its watch sent it), so the lag behind the master and the last sync, and the lease
 * of every worker and slave. Any other node shows the declarations and its own head.
 */
export function networkData (node: NodeView): NetworkData {
  const { ledger, config, tcp } = node
  const head = ledger?.head.seq ?? 0
  const ownPeer = tcp?.running === true ? tcp.peerId : undefined
  const allocation = node.master?.runningAllocator?.summary()
  const leaseOf = (type: string, name: string): NetworkNode['lease'] => {
    const row: LeaseRow | undefined = type === 'worker' ? allocation?.leases[name] : type === 'slave' ? allocation?.slave_leases[name] : undefined
    return row === undefined ? null : { state: row.state, draining: row.draining, running: row.running, renewed_ms_ago: row.renewed_ms_ago ?? null }
  }
  const nodes: NetworkNode[] = []
  for (const type of NODE_POLICY_TYPES) {
    for (const policy of ledger?.state.policiesOfType(type) ?? []) {
      const body = policyBody(policy)
      const name = String(body.name)
      const ip = text(body.ip) ?? text(body.external_ip) ?? text(body.local_ip)
      const peerId = text(body.peer_id)
      const self = (peerId !== null && peerId === ownPeer) || (peerId === null && body.public_key === node.signer.publicKey)
      const synced = peerId !== null && !self ? node.syncPeers?.get(peerId) : undefined
      const seq = self ? head : synced?.seq ?? null
      nodes.push({
        name,
        type,
        company: text(body.company),
        address: ip !== null && body.port !== undefined ? `${ip}:${String(body.port)}` : null,
        rest: ip !== null && body.rest_port !== undefined ? `${ip}:${String(body.rest_port)}` : null,
        peer_id: peerId,
        key: String(body.public_key),
        self,
        seq,
        lag: seq === null ? null : Math.max(0, head - seq),
        last_sync: synced === undefined ? null : new Date(synced.at).toISOString(),
        watching: synced === undefined ? null : synced.watching,
        lease: leaseOf(type, name)
      })
    }
  }
  nodes.sort((a, b) => NODE_POLICY_TYPES.indexOf(a.type as typeof NODE_POLICY_TYPES[number]) - NODE_POLICY_TYPES.indexOf(b.type as typeof NODE_POLICY_TYPES[number]) || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const database = node.database?.summary()
  return { node: config.nodeName, role: config.role, head, nodes, ...(database !== undefined ? { database } : {}) }
}
