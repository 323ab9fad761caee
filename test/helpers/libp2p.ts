import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Multiaddr } from '@multiformats/multiaddr'
import { InsertProtocol, type InsertInit } from '../../src/protocols/insert/index.js'
import { Ledger } from '../../src/ledger/ledger.js'
import { LevelStore } from '../../src/ledger/level-store.js'
import type { LedgerStore } from '../../src/ledger/store.js'
import { SyncProtocol, type SyncInit } from '../../src/protocols/sync/index.js'
import { libp2pPrivateKey } from '../../src/node/identity.js'
import { type Logger, silentLogger } from '../../src/base/logger.js'
import { canonicalJson } from '../../src/policies/canonical.js'
import { Ed25519Signer } from '../../src/policies/keys.js'
import type { Policy } from '../../src/policies/policy.js'
import { preparePolicy } from '../../src/policies/prepare.js'
import { type P2PNode, P2PHost } from '../../src/services/p2p.js'
import { MasterList } from '../../src/services/master-list.js'

interface Teardown { teardown: (fn: () => void | Promise<void>) => void }

/** How long a teardown waits for one node or ledger to stop before moving on. */
const STOP_WITHIN_MS = 3000

async function within (ms: number, work: Promise<unknown>): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  await Promise.race([
    work.catch(() => {}),
    new Promise(resolve => { timer = setTimeout(resolve, ms); timer.unref() })
  ])
  clearTimeout(timer)
}

export interface LedgerPeer {
  /** the node's libp2p host, built as every node builds it (tcp, noise, yamux, identify, ping) */
  host: P2PHost
  libp2p: P2PNode
  ledger: Ledger
  /** the node's identity key; on the master it also signs heads */
  signer: Ed25519Signer
  address: Multiaddr
  log: Logger
}

/**
 * A libp2p host on 127.0.0.1 (random port, loopback exempt from the inbound rate limit) with
 * a ledger on LevelDB in a temp dir: the master's (signing heads) with `master: true`, else a
 * replica's with no signer (it pins the master key from the first signed head it accepts).
 * Stopped and removed at teardown, each step with a bounded wait.
 */
export async function ledgerPeer (t: Teardown, opts: { master?: boolean, log?: Logger, store?: (path: string) => LedgerStore } = {}): Promise<LedgerPeer> {
  const dir = mkdtempSync(join(tmpdir(), 'lm-peer-'))
  const log = opts.log ?? silentLogger()
  const signer = new Ed25519Signer(randomBytes(32))
  const host = new P2PHost({ privateKey: libp2pPrivateKey(signer), ip: '127.0.0.1', port: 0, allow: ['127.0.0.1'], log })
  await host.start()
  const store = opts.store?.(join(dir, 'ledger')) ?? new LevelStore({ path: join(dir, 'ledger') })
  const ledger = new Ledger({ store, log, masterSigner: opts.master === true ? signer : undefined })
  await ledger.open()
  t.teardown(async () => {
    await within(STOP_WITHIN_MS, host.stop())
    await within(STOP_WITHIN_MS, ledger.close())
    rmSync(dir, { recursive: true, force: true })
  })
  return { host, libp2p: host.libp2p, ledger, signer, address: host.libp2p.getMultiaddrs()[0], log }
}

/** The peer's p2p address as LEDGER_CONN writes it, `127.0.0.1:port`. */
export function hostPortOf (peer: { address: Multiaddr }): string {
  const port = /\/tcp\/(\d+)/.exec(peer.address.toString())?.[1]
  if (port === undefined) throw new Error(`no TCP port in ${peer.address.toString()}`)
  return `127.0.0.1:${port}`
}

/** A MasterList of `peers` (clients rotate through them), learning from `ledger` if given. */
export function mastersOf (peers: Array<{ address: Multiaddr }>, ledger?: Ledger): MasterList {
  return new MasterList(peers.map(hostPortOf), ledger === undefined ? undefined : () => ledger)
}

/** A started SyncProtocol on `peer`, stopped at teardown. */
export async function startSync (t: Teardown, peer: LedgerPeer, init: SyncInit = {}): Promise<SyncProtocol> {
  const sync = new SyncProtocol({ libp2p: peer.libp2p, ledger: peer.ledger, log: peer.log }, init)
  await sync.start()
  t.teardown(async () => { await within(STOP_WITHIN_MS, sync.stop()) })
  return sync
}

/** A started InsertProtocol on `peer` (it serves only on the master), stopped at teardown. */
export async function startInsert (t: Teardown, peer: LedgerPeer, init: InsertInit = {}): Promise<InsertProtocol> {
  const insert = new InsertProtocol({ libp2p: peer.libp2p, ledger: peer.ledger, log: peer.log }, init)
  await insert.start()
  t.teardown(async () => { await within(STOP_WITHIN_MS, insert.stop()) })
  return insert
}

/** The author of the probe policies the tests insert (an ordinary key, not the master's). */
export const author = new Ed25519Signer(randomBytes(32))

export function probe (name: string, signer = author): Policy {
  return preparePolicy({ probe: { name } }, signer)
}

/** Inserts `count` small signed policies through the master's group commit. */
export async function insertProbes (ledger: Ledger, count: number, prefix = 'probe'): Promise<void> {
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    await ledger.submit({ op: 'put', policy: probe(`${prefix}-${i}`) })
  }))
}

/** The ledger's live policies as sorted canonical JSON, to compare two replicas' states. */
export function stateSnapshot (ledger: Ledger): string[] {
  return [...ledger.state.all()].map(p => canonicalJson(p)).sort()
}

/** Polls `check` every 20 ms until it holds or `ms` pass; returns whether it held. */
export async function until (check: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms
  while (!check()) {
    if (Date.now() > end) return false
    await new Promise(resolve => setTimeout(resolve, 20))
  }
  return true
}
