import type { Libp2p } from 'libp2p'
import type { Logger } from '../base/logger.js'
import type { Ledger } from '../ledger/ledger.js'
import type { Ed25519Signer } from '../policies/keys.js'
import { checkSealedForMaster } from '../policies/sealed-settings.js'
import { InsertProtocol } from '../protocols/insert/index.js'
import { LightProtocol } from '../protocols/light/index.js'
import { SyncProtocol } from '../protocols/sync/index.js'
import { JoinProtocol } from '../services/admission/index.js'
import type { NodeMetrics } from '../services/metrics.js'
import { CheckpointGossip } from '../services/checkpoint-gossip.js'
import { CheckpointProtocol } from '../protocols/checkpoint/index.js'
import type { ForkWatch } from '../ledger/fork-watch.js'
import type { WitnessedCheckpoint } from '../ledger/witnessed.js'
import type { Witness } from '../ledger/tlog/witness.js'
import { WitnessProtocol } from '../protocols/witness/index.js'
import { SnapshotProtocol } from '../protocols/snapshot/index.js'
import { SnapshotFiles } from '../ledger/snapshot/files.js'
import { NodeSnapshots, type SnapshotSettings } from './snapshots.js'
import { Cosigner } from '../services/cosigner.js'
import { errorMessage } from '../base/errors.js'
import { joinTokenPinCheck, type trustedMasterCheck } from './trusted-masters.js'
import { lightFaults } from './test-faults.js'

export interface NodeProtocols {
  sync: SyncProtocol
  join: JoinProtocol
  insert: InsertProtocol
  /** checkpoint gossip over its own protocol: catches a master showing two histories */
  gossip: CheckpointGossip
  /** served on a witness; the client side on a master */
  witness: WitnessProtocol
  /** a master's collector of cosignatures */
  cosigner: Cosigner | undefined
  /** served by every full node; a light worker's client side */
  light: LightProtocol
  /** every node serves the snapshots under its home; the client side fetches a peer's to bootstrap */
  snapshot: SnapshotProtocol
  /** a full node's snapshots: taken for others, and the one it started from */
  snapshots: NodeSnapshots | undefined
}

/**
 * The protocols every node serves once `run blockchain sync` starts: sync (every node can
 * relay), join (admission on first contact), insert (a master orders, a replica forwards),
 * light (a full node proves light workers their policies; a light node only fetches) and
 * snapshot (the snapshot files under the node's home, whoever wrote them).
 */
export async function startNodeProtocols (opts: {
  libp2p: Libp2p
  ledger: Ledger
  forks: ForkWatch
  witnessed: WitnessedCheckpoint
  /** WITNESS=true: served over the witness protocol too */
  witness: Witness | undefined
  /** a master: cosign its checkpoints by the network policy's witnesses while it writes */
  cosign: { isWriter: () => boolean } | undefined
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
  /** LEDGER_MODE=light: this node holds no ledger to serve light requests from */
  light: boolean
  /** the node's home directory: its snapshots are under snapshot/ there (src/ledger/snapshot/files.ts) */
  home: string
  /** how a full node takes snapshots and starts from one (not on a light worker) */
  snapshots: SnapshotSettings
}): Promise<NodeProtocols> {
  const { libp2p, ledger, log, metrics } = opts
  const sync = new SyncProtocol({ libp2p, ledger, forks: opts.forks, log: log.child({ service: 'sync' }), servingRefused: opts.servingRefused, onRefused: () => { metrics.unadmitted.inc({ what: 'sync' }) } })
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
  const { witnessed, witness } = opts
  const gossip = new CheckpointGossip({
    libp2p,
    protocol: new CheckpointProtocol({ libp2p, log }),
    ledger,
    forks: opts.forks,
    log: log.child({ service: 'gossip' }),
    witnessed: () => witnessed.latest?.note,
    onNote: note => { witnessed.accept(note).catch(err => { log.debug({ err: errorMessage(err) }, 'a gossiped witnessed checkpoint was not kept') }) }
  })
  await gossip.start()
  // a newly witnessed checkpoint spreads at once: each node that learns one shows it on
  witnessed.on('witnessed', () => { gossip.soon() })
  const witnessProtocol = new WitnessProtocol({ libp2p, log })
  if (witness !== undefined) await witnessProtocol.serve(async body => await witness.addCheckpoint(body))
  const cosigner = opts.cosign === undefined ? undefined : new Cosigner({ ledger, protocol: witnessProtocol, witnessed, log: log.child({ service: 'cosigner' }), isWriter: opts.cosign.isWriter })
  await cosigner?.start()
  const light = new LightProtocol({
    libp2p,
    ledger: opts.light ? undefined : ledger,
    // the checkpoint whole: with the witnesses' cosignatures when the latest is witnessed
    witnessed: () => witnessed.latest,
    log: log.child({ service: 'light' }),
    servingRefused: opts.servingRefused,
    onServed: code => { metrics.lightServed.inc({ result: code === undefined ? 'answered' : code }) },
    tamper: lightFaults(log)
  })
  await light.start()
  // served whether or not a snapshot exists yet: a missing file is refused as not_found
  const snapshot = new SnapshotProtocol({ libp2p, log: log.child({ service: 'snapshot' }) })
  await snapshot.serve(new SnapshotFiles(opts.home))
  // an empty replica may start from a snapshot here, before its sync service pulls anything
  const snapshots = opts.light ? undefined : new NodeSnapshots({ ledger, home: opts.home, protocol: snapshot, witnessed, forks: opts.forks, settings: opts.snapshots, log })
  await snapshots?.start()
  return { sync, join, insert, gossip, witness: witnessProtocol, cosigner, light, snapshot, snapshots }
}

/** What stopping the node stops of them, in order: what serves peers first, the sync protocol last. */
export function nodeProtocolServices (protocols: NodeProtocols | undefined): Array<{ stop: () => Promise<void>, constructor: { name: string } }> {
  if (protocols === undefined) return []
  return [protocols.snapshots, protocols.snapshot, protocols.light, protocols.cosigner, protocols.gossip, protocols.witness, protocols.insert, protocols.sync].filter(s => s !== undefined)
}
