/**
 * Insert clients in their own process: a libp2p host (as every node has) submitting signed
 * policies to the master over `/ledgermesh/insert/1.0.0` with InsertProtocol.submit.
 *
 * argv[2]: {"addr": master multiaddr}
 * Commands: `prepare {count, tag}` signs `count` policies (not timed);
 * `run {concurrency}` submits them with `concurrency` in flight (each "client" takes the
 * next policy when its last one is acknowledged) → `{seconds, latenciesMs}`.
 */
import { randomBytes } from 'node:crypto'
import { multiaddr } from '@multiformats/multiaddr'
import { InsertProtocol } from '../../src/protocols/insert/index.js'
import { Ledger } from '../../src/ledger/ledger.js'
import type { LedgerStore } from '../../src/ledger/store.js'
import { libp2pPrivateKey } from '../../src/node/identity.js'
import { silentLogger } from '../../src/base/logger.js'
import { Ed25519Signer } from '../../src/policies/keys.js'
import type { Policy } from '../../src/policies/policy.js'
import { P2PHost } from '../../src/services/p2p.js'
import { childArgs, serveParent } from './child.js'
import { makePolicies } from './harness.js'

const args = childArgs<{ addr: string }>()
const target = multiaddr(args.addr)
const log = silentLogger()
const signer = new Ed25519Signer(randomBytes(32))
const host = new P2PHost({ privateKey: libp2pPrivateKey(signer), ip: '127.0.0.1', port: 0, allow: ['127.0.0.1'], log })
await host.start()
// A client never serves inserts; the protocol only asks its ledger whether it is the master.
const ledger = new Ledger({ store: {} as unknown as LedgerStore, log })
const insert = new InsertProtocol({ libp2p: host.libp2p, ledger, log })
await insert.start()
let policies: Policy[] = []

serveParent({}, {
  prepare: ({ count, tag }) => {
    policies = makePolicies(Number(count), { signer, tag: String(tag) })
    return {}
  },
  run: async ({ concurrency }) => {
    const latenciesMs: number[] = []
    let next = 0
    const start = performance.now()
    await Promise.all(Array.from({ length: Number(concurrency) }, async () => {
      while (next < policies.length) {
        const policy = policies[next++]
        const t0 = performance.now()
        await insert.submit(target, { op: 'put', policy })
        latenciesMs.push(performance.now() - t0)
      }
    }))
    const seconds = (performance.now() - start) / 1000
    policies = []
    return { seconds, latenciesMs }
  }
}, async () => {
  await insert.stop()
  await host.stop()
})
