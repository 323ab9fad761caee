import t from 'tap'
import { propagation } from '../bench/propagation.js'
import { catchUp } from '../bench/catch-up.js'
import { steadyState } from '../bench/steady-state.js'
import { insertThroughput } from '../bench/insert-throughput.js'
import { queryLatency } from '../bench/query-latency.js'
import { replicaMemory } from '../bench/replica-memory.js'
import { verifyRate } from '../bench/verify-rate.js'
import { restInsert, restInsertConcurrent, restQuery } from '../bench/rest.js'
import { failover } from '../bench/failover.js'
import { pgFailover } from '../bench/pg-failover.js'
import { fleetJoin } from '../bench/fleet-join.js'
import { placement } from '../bench/placement.js'
import { sim } from '../bench/sim/index.js'

// Every benchmark at its smallest, so none can rot; timings are not asserted here, only that
// each runs to the end and reports what it should.

const finite = (n: unknown): boolean => typeof n === 'number' && Number.isFinite(n) && n >= 0

t.test('propagation, 2 replicas and 3 inserts', async t => {
  const row = await propagation({ replicas: 2, inserts: 3 })
  t.match(row, { replicas: 2, inserts: 3 })
  t.ok([row.p50_ms, row.p99_ms, row.max_ms].every(finite), 'latencies are durations')
  t.ok(row.p50_ms <= row.p99_ms && row.p99_ms <= row.max_ms, 'percentiles are ordered')
})

t.test('catch-up beside the AnyLog model, 300 policies', async t => {
  const [row] = await catchUp({ sizes: [300], runs: 1 })
  t.equal(row.policies, 300)
  t.ok(row.wire_bytes > 300 * 100, 'every entry crossed the wire')
  t.ok(row.anylog_wire_bytes > 300 * 100, 'the model sent the whole file')
  t.ok([row.seconds, row.entries_per_s, row.replica_cpu_s, row.time_ratio, row.bytes_ratio].every(finite))
})

t.test('steady state beside the AnyLog model, 300 policies', async t => {
  const rows = await steadyState({ policies: 300, rounds: 2, keepaliveWindowMs: 1000 })
  const unchanged = rows.find(r => r.case.startsWith('unchanged'))
  const changed = rows.find(r => r.case.startsWith('one changed (pull'))
  t.ok(unchanged !== undefined && changed !== undefined, 'both cases measured')
  t.ok(changed!.anylog_wire_bytes_per_round > 300 * 100, 'the model re-sends the whole file after a change')
  t.ok(changed!.wire_bytes_per_round < changed!.anylog_wire_bytes_per_round, 'a pull sends only the new entry')
  t.ok(rows.every(r => [r.wire_bytes_per_round, r.replica_cpu_ms_per_round, r.anylog_ms_per_round].every(finite)))
})

t.test('insert throughput on LevelDB and PostgreSQL, tiny', async t => {
  const rows = await insertThroughput({ sequential: 10, concurrent: 32, clients: 8 })
  t.same(rows.map(r => `${r.store}/${r.via}/${r.clients}`).sort(),
    ['level/direct/1', 'level/direct/8', 'level/protocol/1', 'level/protocol/8', 'psql/direct/1', 'psql/direct/8', 'psql/protocol/1', 'psql/protocol/8'])
  t.ok(rows.every(r => r.inserts > 0 && finite(r.inserts_per_s) && r.p50_ms <= r.p99_ms))
})

t.test('query latency, 300 policies', async t => {
  const rows = await queryLatency({ policies: 300, iterations: 20 })
  const indexed = rows.find(r => r.kind === 'indexed field (1 match)')
  t.equal(indexed?.results, 1, 'the indexed lookup finds its one policy')
  const count = rows.find(r => r.query === 'blockchain get * bring.count')
  t.equal(count?.results, 300, 'bring.count counts every policy')
  t.ok(rows.every(r => r.calls === 20 && finite(r.p99_ms)))
})

t.test('replica memory, 200 policies', async t => {
  const rows = await replicaMemory({ policies: 200 })
  t.ok(rows.length >= 2)
  t.ok(rows.every(r => r.rss_mb > 0))
  t.ok(rows.some(r => r.policies >= 200), 'a replica holds the ledger')
})

t.test('verification rates, 300 signatures', async t => {
  const rows = await verifyRate({ entries: 300, batch: 100 })
  t.ok(rows.length >= 4)
  t.ok(rows.every(r => r.entries === 300 && r.entries_per_s > 0 && finite(r.vs_raw)))
})

t.test('REST inserts at masters on LevelDB and PostgreSQL and at a member, and REST queries, tiny', async t => {
  // a warm-up of 5 requests and no time floor (bench/lib/sequential.ts), so a tiny run stays tiny
  process.env.BENCH_WARM_UP = '5'
  process.env.BENCH_WARM_UP_S = '0'
  t.teardown(() => { delete process.env.BENCH_WARM_UP; delete process.env.BENCH_WARM_UP_S })
  const rows = await restInsert({ sizes: [50], inserts: 20 })
  t.same(rows.map(r => `${r.at}/${r.store}`), ['master/level', 'master/psql', 'member/level'])
  t.ok(rows.every(r => r.requests === 20 && r.per_s > 0 && r.p50_ms <= r.p99_ms && r.policies_before === 50))
  const [query] = await restQuery({ size: 50, queries: 20 })
  t.equal(query.requests, 20)
  t.ok(finite(query.p99_ms) && finite(query.cold_p99_ms), 'the warm and the warm-up p99')
  const [concurrent] = await restInsertConcurrent({ clients: 4, inserts: 40 })
  t.equal(concurrent.requests, 40)
  t.match(concurrent.goal, /raw verify on one core/)
})

t.test('failover, 1 round and 2 clients', async t => {
  const [row] = await failover({ rounds: 1, clients: 2 })
  t.match(row, { bench: 'failover', rounds: 1, clients: 2, lost: 0 })
  t.ok(row.acknowledged > 20, 'inserts were acknowledged before and after the kill')
  t.ok([row.gap_p50_ms, row.gap_p99_ms, row.gap_max_ms].every(finite), 'gaps are durations')
})

t.test('pg-failover, one kill -9 of the primary and one switchover', async t => {
  const rows = await pgFailover({ kills: 1, switchovers: 1, defaults: 0 })
  t.match(rows, [{ bench: 'pg-failover', fault: 'kill -9 of the primary', timings: 'fast', rounds: 1, failed_checks: [] }, { fault: 'planned switchover', rounds: 1, failed_checks: [] }])
  t.ok(rows.every(row => row.acknowledged > 20), 'inserts were acknowledged before and after each fault')
  t.ok(rows.every(row => [row.gap_p50_ms, row.gap_p99_ms, row.gap_max_ms].every(finite)), 'gaps are durations')
})

t.test('fleet-join, 20 workers joining a ledger of 2 slaves and 40 profiles', async t => {
  process.env.BENCH_WARM_UP = '5'
  process.env.BENCH_WARM_UP_S = '0'
  t.teardown(() => { delete process.env.BENCH_WARM_UP; delete process.env.BENCH_WARM_UP_S })
  const [row] = await fleetJoin({ slaves: 2, profiles: 40, workers: 20 })
  t.match(row, { bench: 'fleet-join', workers: 20, window: 4 })
  t.ok([row.first_per_s, row.last_per_s, row.ratio, row.p50_ms, row.p99_ms].every(finite) && row.first_per_s > 0, 'rates measured')
  t.match(row.goal, /^last 4 >= 0\.9 x first 4: (met|missed)$/)
})

t.test('placement, 200 workers and 1,000 profiles in-process', async t => {
  const rows = await placement({ workers: 200, slaves: 4, profiles: 1000 })
  t.ok(rows.some(r => r.what.startsWith('full round') && r.what.includes('0 unplaced')), 'every profile was placed before the full round is timed')
  t.ok(rows.some(r => r.what.includes('a worker joins')))
  t.ok(rows.every(r => finite(r.p50_ms) && r.p50_ms <= r.p99_ms))
})

t.test('sim: the model calibrated on runs of 2 and 3 replicas, checked on 4, sizing a fleet of 50', async t => {
  process.env.BENCH_SIM_CALIBRATION = '2,3'
  process.env.BENCH_SIM_REPLICAS = '4'
  process.env.BENCH_SIM_INSERTS = '4'
  process.env.BENCH_SIM_FLEETS = '50'
  process.env.BENCH_SIM_MODEL_INSERTS = '20'
  t.teardown(() => { for (const k of ['BENCH_SIM_CALIBRATION', 'BENCH_SIM_REPLICAS', 'BENCH_SIM_INSERTS', 'BENCH_SIM_FLEETS', 'BENCH_SIM_MODEL_INSERTS']) delete process.env[k] })
  const rows = await sim()
  const calibration = rows.find(r => r.part === 'calibration' && r.what.startsWith('costs'))!
  t.ok(finite(calibration.commitMs) && finite(calibration.applyMs) && (calibration.commitMs as number) > 0, 'critical costs measured')
  const validation = rows.filter(r => r.part === 'validation')
  t.equal(validation.length, 3, 'the real 4-replica runs (star and relayed) and the WAN run, predicted')
  t.ok(validation.every(r => finite(r.measured_p50_ms) && finite(r.predicted_p50_ms)))
  const trees = rows.filter(r => r.part === 'relay tree')
  t.same(trees.map(r => r.nodes), [50, 50], 'a star and a tree of 50')
  t.ok(trees.every(r => finite(r.p99_ms) && typeof r.goal === 'string'))
})
