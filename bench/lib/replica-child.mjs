/**
 * A replica alone in its process, for the memory benchmark. Plain JavaScript on the compiled
 * sources (dist/, as a node runs; bench/run.ts builds it when stale), without tsx, whose compiler and
 * source maps would add ~30 MB to the process; run with --expose-gc. Built as a non-master
 * node builds its replica (node.ts): libp2p host, LevelDB ledger without fsync, no master
 * signer, the sync protocol started.
 *
 * argv[2]: {"addr": master multiaddr, "head": seq to reach}
 * Commands (child.ts protocol): `memory` → process.memoryUsage() after full GCs; `sync` pulls
 * until the head → {seconds, head, policies}; `reopen` closes the ledger and opens it again
 * from its store (a restarted replica: the state folded from disk) → {seconds, head, policies}.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { multiaddr } from '@multiformats/multiaddr'
import { Ledger } from '../../dist/ledger/ledger.js'
import { LevelStore } from '../../dist/ledger/level-store.js'
import { SyncProtocol } from '../../dist/protocols/sync/index.js'
import { libp2pPrivateKey } from '../../dist/node/identity.js'
import { silentLogger } from '../../dist/base/logger.js'
import { Ed25519Signer } from '../../dist/policies/keys.js'
import { P2PHost } from '../../dist/services/p2p.js'

const args = JSON.parse(process.argv[2])
const dir = mkdtempSync(join(tmpdir(), 'lm-bench-replica-'))
const log = silentLogger()
const signer = new Ed25519Signer(randomBytes(32))
const host = new P2PHost({ privateKey: libp2pPrivateKey(signer), ip: '127.0.0.1', port: 0, allow: ['127.0.0.1'], log })
await host.start()
const store = new LevelStore({ path: join(dir, 'ledger'), durable: false })
let ledger = new Ledger({ store, log })
await ledger.open()
const sync = new SyncProtocol({ libp2p: host.libp2p, ledger, log })
await sync.start()

async function settledMemory () {
  for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise(resolve => setTimeout(resolve, 100)) }
  // RssAnon is the process's own memory; RssFile is mapped files (LevelDB maps its tables),
  // pages the kernel can drop and re-read at will.
  const status = readFileSync('/proc/self/status', 'utf8')
  const kb = field => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN) * 1024
  return { ...process.memoryUsage(), rssAnon: kb('RssAnon'), rssFile: kb('RssFile') }
}

const handlers = {
  memory: async () => ({ ...await settledMemory() }),
  sync: async () => {
    const start = performance.now()
    const target = multiaddr(args.addr)
    while (ledger.head.seq < args.head) {
      const { applied } = await sync.pull(target)
      if (applied === 0 && ledger.head.seq < args.head) throw new Error(`pull applied nothing at ${ledger.head.seq}`)
    }
    return { seconds: (performance.now() - start) / 1000, head: ledger.head.seq, policies: ledger.state.size }
  },
  reopen: async () => {
    const start = performance.now()
    await sync.stop()
    await ledger.close()
    // the old ledger object stays referenced (by the sync protocol): empty its state
    ledger.state.reset()
    ledger = new Ledger({ store, log })
    await ledger.open()
    return { seconds: (performance.now() - start) / 1000, head: ledger.head.seq, policies: ledger.state.size }
  }
}

const send = message => { process.stdout.write(JSON.stringify(message) + '\n') }
send({ id: 0, ok: true })
let queue = Promise.resolve()
const lines = createInterface({ input: process.stdin })
lines.on('line', line => {
  const message = JSON.parse(line)
  queue = queue.then(async () => {
    try {
      const handler = handlers[message.cmd]
      if (handler === undefined) throw new Error(`unknown command ${message.cmd}`)
      send({ ...await handler(message), id: message.id, ok: true })
    } catch (err) {
      send({ id: message.id, ok: false, error: err instanceof Error ? (err.stack ?? err.message) : String(err) })
    }
  })
})
lines.on('close', () => {
  void queue.then(async () => {
    await sync.stop().catch(() => {})
    await host.stop().catch(() => {})
    await ledger.close().catch(() => {})
    rmSync(dir, { recursive: true, force: true })
  }).finally(() => { process.exit(0) })
})
