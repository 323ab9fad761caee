import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { Executor } from '../src/commands/executor.js'
import { runQuery } from '../src/commands/bring.js'
import { LevelStore } from '../src/ledger/level-store.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { benchPolicies, buildLedger, envInt, percentile, round, tempDir, withCleanup } from './lib/harness.js'

/**
 * query-latency on a replica ledger of N policies (BENCH_POLICIES, default 100,000): the
 * ledger is written as the master orders it, then opened as a replica opens its store (the
 * log folded into the in-memory state and indexes, as after a sync or a restart).
 *
 * Each query is run through the command executor — parse, `blockchain get` handler
 * (runQuery on the replica's state), output text — as the REPL and REST run it, minus HTTP.
 * The equality lookups change their value every call. p50/p99 over BENCH_QUERY_ITERATIONS
 * calls (default 2,000; at most ~5 s per query) after 50 warm-up calls.
 */
export interface QueryRow {
  policies: number
  query: string
  kind: string
  results: number
  calls: number
  p50_ms: number
  p99_ms: number
  max_ms: number
  goal?: string
}

export async function queryLatency (opts: { policies?: number, iterations?: number, budgetMs?: number } = {}): Promise<QueryRow[]> {
  const policies = opts.policies ?? benchPolicies()
  const iterations = opts.iterations ?? envInt('BENCH_QUERY_ITERATIONS', 2000)
  const budgetMs = opts.budgetMs ?? 5000
  return await withCleanup(async t => {
    const store = new LevelStore({ path: join(tempDir(t, 'lm-bench-query-'), 'ledger'), durable: false })
    const ledger = await buildLedger(store, policies, { masterSigner: new Ed25519Signer(randomBytes(32)), asMaster: false, tag: 'q' })
    t.teardown(async () => { await ledger.close() })
    const executor = new Executor()
    executor.register('blockchain get', (cmd, ctx) => runQuery(ledger.state, cmd.query!, v => ctx.executor.resolve(v, ctx.vars)))

    // policy i is a worker when i % 100 === 0, else a profile (harness.ts benchPolicy)
    const profileNumber = (k: number): number => { const i = 1 + (k * 7919) % policies; return i % 100 === 0 ? i + 1 : i }
    const workers = Math.floor(policies / 100)
    const queries: Array<{ kind: string, text: (k: number) => string, shown: string, goal?: (p99: number) => string }> = [
      { kind: 'indexed field (1 match)', shown: 'blockchain get profile where name = q-profile-<i>', text: k => `blockchain get profile where name = q-profile-${Math.min(profileNumber(k), policies)}`, goal: p99 => `p99 < 1 ms: ${p99 < 1 ? 'met' : 'missed'}` },
      { kind: 'indexed field (1 match), one field', shown: 'blockchain get profile where name = q-profile-<i> bring [profile][kind]', text: k => `blockchain get profile where name = q-profile-${Math.min(profileNumber(k), policies)} bring [profile][kind]`, goal: p99 => `p99 < 1 ms: ${p99 < 1 ? 'met' : 'missed'}` },
      { kind: 'indexed field (~100 matches)', shown: 'blockchain get profile where subaccount = q-sub-<j> bring [profile][name]', text: k => `blockchain get profile where subaccount = q-sub-${1 + (k % 999)} bring [profile][name] separator=,` },
      ...(workers > 0
        ? [
            { kind: 'indexed field, worker', shown: 'blockchain get worker where name = q-worker-<i>', text: (k: number) => `blockchain get worker where name = q-worker-${100 * (1 + (k % workers))}`, goal: (p99: number) => `p99 < 1 ms: ${p99 < 1 ? 'met' : 'missed'}` },
            { kind: 'by type', shown: `blockchain get worker (all ${workers}, JSON)`, text: () => 'blockchain get worker' },
            { kind: 'by type, one field', shown: 'blockchain get worker bring [worker][name]', text: () => 'blockchain get worker bring [worker][name] separator=,' }
          ]
        : []),
      { kind: 'bring.count, one type', shown: 'blockchain get profile bring.count', text: () => 'blockchain get profile bring.count' },
      { kind: 'bring.count, all types', shown: 'blockchain get * bring.count', text: () => 'blockchain get * bring.count' },
      { kind: 'bring.count, indexed field', shown: 'blockchain get profile where kind = mta bring.count', text: () => 'blockchain get profile where kind = mta bring.count' },
      { kind: 'scan (range condition)', shown: 'blockchain get worker where port > 50000 bring.count', text: () => 'blockchain get worker where port > 50000 bring.count' }
    ]
    const rows: QueryRow[] = []
    for (const q of queries) {
      const run = async (k: number): Promise<unknown> => {
        const [output] = await executor.runForOutput(q.text(k), { via: 'test' })
        return output
      }
      for (let k = 0; k < 50; k++) await run(k)
      const first = await run(0) as { value: unknown }
      const results = typeof first.value === 'number' ? first.value : Array.isArray(first.value) ? first.value.length : 1
      const latencies: number[] = []
      const end = performance.now() + budgetMs
      for (let k = 0; k < iterations && (k < 20 || performance.now() < end); k++) {
        const t0 = performance.now()
        await run(k)
        latencies.push(performance.now() - t0)
      }
      const p99 = percentile(latencies, 99)
      rows.push({
        policies: ledger.head.seq,
        query: q.shown,
        kind: q.kind,
        results,
        calls: latencies.length,
        p50_ms: round(percentile(latencies, 50), 4),
        p99_ms: round(p99, 4),
        max_ms: round(Math.max(...latencies), 4),
        ...(q.goal !== undefined ? { goal: q.goal(p99) } : {})
      })
    }
    return rows
  })
}
