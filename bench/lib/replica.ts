import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { multiaddr, type Multiaddr } from '@multiformats/multiaddr'
import { Ledger } from '../../src/ledger/ledger.js'
import { LevelStore } from '../../src/ledger/level-store.js'
import { SyncProtocol } from '../../src/protocols/sync/index.js'
import { libp2pPrivateKey } from '../../src/node/identity.js'
import { silentLogger } from '../../src/base/logger.js'
import { Ed25519Signer } from '../../src/policies/keys.js'
import { P2PHost } from '../../src/services/p2p.js'
import { type Cleanup, tempDir } from './harness.js'

export interface Replica {
  host: P2PHost
  ledger: Ledger
  sync: SyncProtocol
  /** stops the host, the protocol and the ledger now (also done at cleanup) */
  stop: () => Promise<void>
}

/**
 * A fresh replica in this process, built as a non-master node builds it (node.ts): a libp2p
 * host on 127.0.0.1, a LevelDB ledger that does not fsync, no master signer (the master key
 * is pinned from the first signed head), and the sync protocol started.
 */
export async function startReplica (t: Cleanup): Promise<Replica> {
  const dir = tempDir(t, 'lm-bench-replica-')
  const log = silentLogger()
  const signer = new Ed25519Signer(randomBytes(32))
  const host = new P2PHost({ privateKey: libp2pPrivateKey(signer), ip: '127.0.0.1', port: 0, allow: ['127.0.0.1'], log })
  await host.start()
  const ledger = new Ledger({ store: new LevelStore({ path: join(dir, 'ledger'), durable: false }), log })
  await ledger.open()
  const sync = new SyncProtocol({ libp2p: host.libp2p, ledger, log })
  await sync.start()
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    await sync.stop()
    await host.stop()
    await ledger.close()
  }
  t.teardown(stop)
  return { host, ledger, sync, stop }
}

/** The master's libp2p address as seen through a proxy on `port` (the peer id is checked by noise). */
export function viaPort (port: number, peerId: string): Multiaddr {
  return multiaddr(`/ip4/127.0.0.1/tcp/${port}/p2p/${peerId}`)
}

/** Pulls until the replica holds `head`. */
export async function pullTo (replica: Replica, target: Multiaddr, head: number): Promise<void> {
  while (replica.ledger.head.seq < head) {
    const result = await replica.sync.pull(target)
    if (result.applied === 0 && replica.ledger.head.seq < head) throw new Error(`pull applied nothing at seq ${replica.ledger.head.seq} (want ${head})`)
  }
}
