import type { Libp2p } from 'libp2p'
import type { Logger } from '../base/logger.js'
import type { Ledger } from '../ledger/ledger.js'
import type { Ed25519Signer } from '../policies/keys.js'
import { checkSealedForMaster } from '../policies/sealed-settings.js'
import { InsertProtocol } from '../protocols/insert/index.js'
import { SyncProtocol } from '../protocols/sync/index.js'
import { JoinProtocol } from '../services/admission/index.js'
import type { NodeMetrics } from '../services/metrics.js'
import { joinTokenPinCheck, type trustedMasterCheck } from './trusted-masters.js'

export interface NodeProtocols {
  sync: SyncProtocol
  join: JoinProtocol
  insert: InsertProtocol
}

/**
 * The protocols every node serves once `run blockchain sync` starts: sync (every node can
 * relay), join (admission on first contact) and insert (a master orders, a replica forwards).
 */
export async function startNodeProtocols (opts: {
  libp2p: Libp2p
  ledger: Ledger
  signer: Ed25519Signer
  log: Logger
  metrics: NodeMetrics
  joinToken: string | undefined
  /** inserts and lease renewals go only to masters this node's ledger trusts */
  checkMaster: ReturnType<typeof trustedMasterCheck>
  /** a relay its own source refused (revoked) serves no one either */
  servingRefused: () => string | undefined
  /** on the master: throws when this master is not the writer */
  checkWriter: () => void
}): Promise<NodeProtocols> {
  const { libp2p, ledger, log, metrics } = opts
  const sync = new SyncProtocol({ libp2p, ledger, log: log.child({ service: 'sync' }), servingRefused: opts.servingRefused, onRefused: () => { metrics.unadmitted.inc({ what: 'sync' }) } })
  await sync.start()
  const join = new JoinProtocol({ libp2p, log: log.child({ service: 'admission' }), checkPeer: joinTokenPinCheck(opts.joinToken) })
  const insert = new InsertProtocol({
    libp2p,
    ledger,
    log: log.child({ service: 'insert' }),
    checkPeer: opts.checkMaster,
    onServed: (code, reason) => {
      metrics.inserts.inc(code === undefined ? { result: 'accepted', reason: '' } : { result: 'rejected', reason: code })
      if (reason === 'not_admitted') metrics.unadmitted.inc({ what: 'insert' })
    },
    // the master keeps plain profile settings off the ledger (docs/workers-and-allocation.md, "Sealed settings")
    check: ledger.isMaster ? op => { opts.checkWriter(); checkSealedForMaster(op, opts.signer) } : undefined
  })
  await insert.start()
  return { sync, join, insert }
}
