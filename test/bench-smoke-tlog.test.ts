import t from 'tap'
import { lightWorker } from '../bench/light-worker.js'
import { tlogProofsServed } from '../bench/tlog.js'
import { witnessCosign } from '../bench/witness-cosign.js'

// The verifiable log's benchmarks at their smallest (bench-smoke.test.ts has the others), so
// none can rot; timings are not asserted here, only that each runs to the end and reports
// what it should.

const finite = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0

t.test('light-worker, 300 policies', async t => {
  const rows = await lightWorker({ policies: 300, runs: 2 })
  t.same(rows.map(r => r.worker), ['light', 'light, NODE_OPTIONS=--max-semi-space-size=1', 'full'], 'a light worker, again with a small young generation, and a full one')
  t.ok(rows[0].held < 20 && rows[2].held >= 300, 'the light worker holds its few policies, the full one the ledger')
  t.ok(rows.every(r => [r.ready_s, r.ready_max_s, r.rss_mb, r.peak_rss_mb].every(finite) && r.ready_max_s >= r.ready_s), 'durations and sizes')
  t.same(rows.map(r => r.runs), [2, 2, 1], 'each light row is the runs asked for, the full one a single worker')
})

t.test('proofs served by a master node, 300 entries', async t => {
  // a warm-up of 5 requests and no time floor (bench/lib/sequential.ts), so a tiny run stays tiny
  process.env.BENCH_WARM_UP = '5'
  process.env.BENCH_WARM_UP_S = '0'
  t.teardown(() => { delete process.env.BENCH_WARM_UP; delete process.env.BENCH_WARM_UP_S })
  const [node, inclusion, consistency] = await tlogProofsServed({ entries: 300, requests: 20 }) as Array<Record<string, any>>
  t.ok(node.entries >= 300, 'the node holds the ledger')
  for (const row of [inclusion, consistency]) {
    t.equal(row.requests, 20)
    t.ok(finite(row.p50_ms) && row.p50_ms <= row.p99_ms && row.max_proof_bytes > 0)
  }
})

t.test('witness cosignatures, 3 witnesses and 5 inserts', async t => {
  const [fromAck, fromSent] = await witnessCosign({ inserts: 5 }) as Array<Record<string, any>>
  t.equal(fromAck.inserts, 5)
  t.ok([fromAck.p50_ms, fromAck.p99_ms, fromSent.p99_ms].every(finite) && fromAck.p50_ms <= fromAck.p99_ms, 'latencies are durations, ordered')
})
