import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { InsertProtocol } from '../src/protocols/insert/index.js'
import { Ledger } from '../src/ledger/ledger.js'
import { openStore } from '../src/ledger/open-store.js'
import type { LedgerStore } from '../src/ledger/store.js'
import { libp2pPrivateKey } from '../src/node/identity.js'
import { createLogger } from '../src/base/logger.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { P2PHost } from '../src/services/p2p.js'
import { createTestDatabase } from '../test/helpers/pg.js'
import { spawnChild } from './lib/child.js'
import { type Cleanup, envInt, makePolicies, percentile, round, tempDir, withCleanup } from './lib/harness.js'

/**
 * insert-throughput at the master, on each store: LevelDB (fsync on every commit, as the
 * master's store is) and PostgreSQL (a fresh database on 127.0.0.1:5432, dropped afterwards).
 *
 * Two ways in, measured separately:
 * - `protocol`: clients in another process submit over libp2p with InsertProtocol.submit (one
 *   client node, each concurrent "client" a stream on its connection): what a node's insert costs.
 * - `direct`: Ledger.submit in the master's process: the master's own path (validate, verify,
 *   authorize, group commit, store), without the network.
 * Each: 1 client sequential (p50/p99 latency) and 64 concurrent clients (inserts/s; concurrent
 * inserts share commits: group commit). Policies are signed before timing. The master logs
 * one line per accepted insert as a node does (to /dev/null here). The ledger starts empty
 * and grows through the runs.
 */
export interface InsertRow {
  store: 'level' | 'psql'
  via: 'protocol' | 'direct'
  clients: number
  inserts: number
  inserts_per_s: number
  p50_ms: number
  p99_ms: number
  max_ms: number
  goal?: string
}

const GOALS: Record<'level' | 'psql', number> = { level: 20_000, psql: 5_000 }

async function masterOn (t: Cleanup, kind: 'level' | 'psql'): Promise<{ ledger: Ledger, host: P2PHost, store: LedgerStore }> {
  const signer = new Ed25519Signer(randomBytes(32))
  const log = createLogger({ name: 'bench-master', role: 'master', level: 'info', file: '/dev/null' })
  const store = kind === 'level'
    ? await openStore({ type: 'level', path: join(tempDir(t, 'lm-bench-insert-'), 'ledger'), durable: true })
    : await openStore({ type: 'psql', ...await createTestDatabase(t) })
  const ledger = new Ledger({ store, log, masterSigner: signer })
  await ledger.open()
  t.teardown(async () => { await ledger.close() })
  const host = new P2PHost({ privateKey: libp2pPrivateKey(signer), ip: '127.0.0.1', port: 0, allow: ['127.0.0.1'], log })
  await host.start()
  t.teardown(async () => { await host.stop() })
  const insert = new InsertProtocol({ libp2p: host.libp2p, ledger, log })
  await insert.start()
  t.teardown(async () => { await insert.stop() })
  return { ledger, host, store }
}

function row (store: 'level' | 'psql', via: 'protocol' | 'direct', clients: number, seconds: number, latenciesMs: number[]): InsertRow {
  const perSecond = latenciesMs.length / seconds
  return {
    store,
    via,
    clients,
    inserts: latenciesMs.length,
    inserts_per_s: Math.round(perSecond),
    p50_ms: round(percentile(latenciesMs, 50), 3),
    p99_ms: round(percentile(latenciesMs, 99), 3),
    max_ms: round(Math.max(...latenciesMs), 3),
    ...(clients > 1 ? { goal: `>= ${GOALS[store]}/s: ${perSecond >= GOALS[store] ? 'met' : 'missed'}` } : {})
  }
}

/** `concurrency` clients in this process calling Ledger.submit, each awaiting its last insert. */
async function direct (ledger: Ledger, count: number, concurrency: number, tag: string): Promise<{ seconds: number, latenciesMs: number[] }> {
  const policies = makePolicies(count, { tag })
  const latenciesMs: number[] = []
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < policies.length) {
      const policy = policies[next++]
      const t0 = performance.now()
      await ledger.submit({ op: 'put', policy })
      latenciesMs.push(performance.now() - t0)
    }
  }))
  return { seconds: (performance.now() - start) / 1000, latenciesMs }
}

export async function insertThroughput (opts: { stores?: Array<'level' | 'psql'>, sequential?: number, concurrent?: number, clients?: number } = {}): Promise<InsertRow[]> {
  const stores = opts.stores ?? (process.env.BENCH_STORES?.split(',') as Array<'level' | 'psql'> | undefined) ?? ['level', 'psql']
  const sequential = opts.sequential ?? envInt('BENCH_SEQUENTIAL_INSERTS', 1000)
  const concurrent = opts.concurrent ?? envInt('BENCH_CONCURRENT_INSERTS', 20_000)
  const clients = opts.clients ?? envInt('BENCH_CLIENTS', 64)
  const rows: InsertRow[] = []
  for (const kind of stores) {
    await withCleanup(async t => {
      const { ledger, host } = await masterOn(t, kind)
      const client = await spawnChild(t, 'insert-client.ts', { addr: `/ip4/127.0.0.1/tcp/${host.port}/p2p/${host.peerId}` })
      // warm-up: the connection, the JIT, the store (not measured)
      await client.call('prepare', { count: 200, tag: `${kind}-warm` })
      await client.call('run', { concurrency: 8 })
      await direct(ledger, 200, 8, `${kind}-warm-direct`)
      for (const [via, n, c] of [['protocol', sequential, 1], ['protocol', concurrent, clients], ['direct', sequential, 1], ['direct', concurrent, clients]] as const) {
        const tag = `${kind}-${via}-${c}`
        if (via === 'protocol') {
          await client.call('prepare', { count: n, tag })
          const { seconds, latenciesMs } = await client.call<{ seconds: number, latenciesMs: number[] }>('run', { concurrency: c })
          rows.push(row(kind, via, c, seconds, latenciesMs))
        } else {
          const { seconds, latenciesMs } = await direct(ledger, n, c, tag)
          rows.push(row(kind, via, c, seconds, latenciesMs))
        }
      }
    })
  }
  return rows
}
