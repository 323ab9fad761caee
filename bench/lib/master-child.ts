/**
 * A benchmark master in its own process: a LevelDB ledger of N signed policies (built through
 * the store API, see harness.ts), a libp2p host serving the sync and insert protocols, and the
 * AnyLog model's master (the same policies as blockchain.json) on its own TCP port.
 *
 * argv[2]: {"home": dir, "policies": N, "tag"?: string}
 * Commands: `put` appends one more policy (Ledger.submit, and a line to blockchain.json) →
 * `{head}`; `cpu` → this process's CPU ms so far; `memory` → process.memoryUsage().
 */
import { join } from 'node:path'
import { Ledger } from '../../src/ledger/ledger.js'
import { LevelStore } from '../../src/ledger/level-store.js'
import { InsertProtocol } from '../../src/protocols/insert/index.js'
import { SyncProtocol } from '../../src/protocols/sync/index.js'
import { libp2pPrivateKey, loadOrCreateIdentity } from '../../src/node/identity.js'
import { silentLogger } from '../../src/base/logger.js'
import { P2PHost } from '../../src/services/p2p.js'
import { AnyLogMaster } from './anylog.js'
import { childArgs, serveParent } from './child.js'
import { benchPolicy, fillStore, makePolicies } from './harness.js'

const args = childArgs<{ home: string, policies: number, tag?: string }>()
const tag = args.tag ?? 'm'
const log = silentLogger()
const started = performance.now()
const { signer } = await loadOrCreateIdentity(args.home)
const store = new LevelStore({ path: join(args.home, 'ledger') })
await fillStore(store, makePolicies(args.policies, { tag }), signer)
const ledger = new Ledger({ store, log, masterSigner: signer })
await ledger.open()
const buildSeconds = (performance.now() - started) / 1000

const host = new P2PHost({ privateKey: libp2pPrivateKey(signer), ip: '127.0.0.1', port: 0, allow: ['127.0.0.1'], log })
await host.start()
const sync = new SyncProtocol({ libp2p: host.libp2p, ledger, log })
await sync.start()
const insert = new InsertProtocol({ libp2p: host.libp2p, ledger, log })
await insert.start()

// The AnyLog model's master file: the same policies, in ledger order, as readers see them.
const anylog = new AnyLogMaster(join(args.home, 'blockchain.json'))
const views: object[] = []
for (let seq = 1; seq <= ledger.head.seq; seq += 5000) {
  for (const entry of await store.range(seq, 5000)) views.push(ledger.state.view(entry.policy))
}
const fileBytes = anylog.writeAll(views)
views.length = 0
await anylog.start()

let extra = 0
const cpuMs = (): number => { const u = process.cpuUsage(); return (u.user + u.system) / 1000 }

serveParent({
  addr: `/ip4/127.0.0.1/tcp/${host.port}/p2p/${host.peerId}`,
  port: host.port,
  peerId: host.peerId,
  anylogPort: anylog.port,
  head: ledger.head.seq,
  masterKey: signer.publicKey,
  buildSeconds,
  fileBytes
}, {
  put: async () => {
    const entry = await ledger.submit({ op: 'put', policy: benchPolicy(++extra, signer, `${tag}-extra-${Date.now()}`) })
    anylog.append(ledger.state.view(entry.policy))
    return { head: entry.seq }
  },
  cpu: () => ({ cpuMs: cpuMs() }),
  memory: () => ({ ...process.memoryUsage() })
}, async () => {
  await anylog.stop()
  await insert.stop()
  await sync.stop()
  await host.stop()
  await ledger.close()
})
