import { spawnSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { cpus, loadavg, totalmem } from 'node:os'
import { propagations } from './propagation.js'
import { catchUp } from './catch-up.js'
import { steadyState } from './steady-state.js'
import { insertThroughput } from './insert-throughput.js'
import { queryLatency } from './query-latency.js'
import { replicaMemory } from './replica-memory.js'
import { verifyRate } from './verify-rate.js'
import { restInsert, restInsertConcurrent, restQuery } from './rest.js'
import { failover } from './failover.js'
import { pgFailover } from './pg-failover.js'
import { tlogProofs, tlogProofsServed, tlogTiles } from './tlog.js'
import { witnessCosign } from './witness-cosign.js'
import { lightWorker } from './light-worker.js'
import { stateTree } from './state-tree.js'
import { snapshotBootstrap } from './snapshot-bootstrap.js'
import { churn } from './churn.js'
import { fleetJoin } from './fleet-join.js'
import { placement } from './placement.js'
import { sim } from './sim/index.js'

/**
 * `npm run bench` runs every benchmark; `npm run bench -- <name> ...` the ones named. Each
 * writes bench/results/<name>.json and prints a table. Sizes come from env vars, so a smoke
 * run can use tiny ones:
 *   BENCH_REPLICAS (propagation, default 5,20,50), BENCH_INSERTS (per replica count, 50),
 *   BENCH_POLICIES (ledger size, default 100000; catch-up takes a list, default 10000,100000),
 *   BENCH_RUNS, BENCH_ROUNDS (steady-state rounds, 20), BENCH_KEEPALIVE_WINDOW_MS,
 *   BENCH_SEQUENTIAL_INSERTS (1000), BENCH_CONCURRENT_INSERTS (20000), BENCH_CLIENTS (64),
 *   BENCH_STORES (level,psql), BENCH_QUERY_ITERATIONS (2000), BENCH_VERIFY (20000),
 *   BENCH_VERIFY_BATCH (10000), BENCH_REST_SIZES (1000,100000), BENCH_REST_INSERTS (3000),
 *   BENCH_REST_CLIENTS (64), BENCH_REST_CONCURRENT_INSERTS (20000), BENCH_FAILOVER_ROUNDS (10),
 *   BENCH_FAILOVER_CLIENTS (8), BENCH_PG_FAILOVER_ROUNDS, BENCH_PG_SWITCHOVER_ROUNDS and
 *   BENCH_PG_DEFAULT_ROUNDS (pg-failover: 10, 10 and 3), BENCH_TREE_LEAVES (tlog-proofs, 1000000), BENCH_SERVED_ENTRIES
 *   and BENCH_SERVED_REQUESTS (tlog-proofs-served, 1000000 and 2000), BENCH_TILES_POLICIES
 *   (tlog-tiles, 100000), BENCH_COSIGN_INSERTS (witness-cosign, 300); light-worker uses BENCH_POLICIES and
 *   BENCH_LIGHT_RUNS (workers per light row, 5); BENCH_STATE_LEAVES and
 *   BENCH_STATE_BATCHES (state-tree, 100000,1000000 and 30); BENCH_SNAPSHOT_POLICIES
 *   (snapshot-bootstrap, 100000,1000000) and BENCH_SNAPSHOT_PROFILE (0: no --cpu-prof run at 100000);
 *   BENCH_CHURN_ENTRIES (churn: log size, 1000000), BENCH_CHURN_LIVE (live policies, 100000) and
 *   BENCH_CHURN_TICK (entries between the replica's snapshot/compaction ticks, 100000);
 *   BENCH_FLEET_SLAVES, BENCH_FLEET_PROFILES and BENCH_FLEET_WORKERS (fleet-join: 10, 10000, 5000);
 *   BENCH_PLACEMENT_WORKERS, BENCH_PLACEMENT_SLAVES and BENCH_PLACEMENT_PROFILES (placement: 10000, 100, 50000);
 *   BENCH_CPU_PROF=<dir> (rest-*, fleet-join: their node processes run under --cpu-prof, profiles left in <dir>);
 *   BENCH_SIM_INSERTS, BENCH_SIM_CALIBRATION, BENCH_SIM_REPLICAS, BENCH_SIM_FLEETS and BENCH_SIM_MODEL_INSERTS
 *   (sim: inserts per real run, 200; the calibration runs' replicas, 5,20; the validation run's, 50; the
 *   fleets sized, 1000,10000; inserts simulated per fleet, 200).
 */
const BENCHMARKS: Record<string, () => Promise<object[]>> = {
  propagation: propagations,
  'catch-up': catchUp,
  'steady-state': steadyState,
  'insert-throughput': insertThroughput,
  'query-latency': queryLatency,
  memory: replicaMemory,
  verify: verifyRate,
  'rest-insert': restInsert,
  'rest-query': restQuery,
  'rest-insert-concurrent': restInsertConcurrent,
  failover,
  'pg-failover': async () => await pgFailover(),
  'tlog-proofs': tlogProofs,
  'tlog-proofs-served': async () => await tlogProofsServed(),
  'tlog-tiles': tlogTiles,
  'witness-cosign': async () => await witnessCosign(),
  'light-worker': lightWorker,
  'state-tree': stateTree,
  'snapshot-bootstrap': snapshotBootstrap,
  churn,
  'fleet-join': fleetJoin,
  placement,
  sim
}

const requested = process.argv.slice(2).filter(a => !a.startsWith('-'))
const names = requested.length > 0 ? requested : Object.keys(BENCHMARKS)
const unknown = names.filter(n => BENCHMARKS[n] === undefined)
if (unknown.length > 0) {
  process.stderr.write(`unknown benchmark '${unknown.join(', ')}'; known: ${Object.keys(BENCHMARKS).join(', ')}\n`)
  process.exit(2)
}
// Node processes and the benchmarks' children run the built code (dist/): build it first when
// any source is newer, so a benchmark never measures the previous build.
const build = spawnSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'build-if-stale.mjs')], { stdio: 'inherit' })
if (build.status !== 0) {
  process.stderr.write('the build failed: nothing measured\n')
  process.exit(1)
}
const resultsDir = join(import.meta.dirname, 'results')
mkdirSync(resultsDir, { recursive: true })
const machine = { cpus: cpus().length, model: cpus()[0]?.model, memory_gb: Math.round(totalmem() / 2 ** 30), node: process.version }
for (const name of names) {
  const started = Date.now()
  const load = loadavg()[0]
  const rows = await BENCHMARKS[name]()
  const result = {
    benchmark: name,
    date: new Date().toISOString(),
    seconds: Math.round((Date.now() - started) / 1000),
    machine: { ...machine, loadavg_1m: { start: Number(load.toFixed(2)), end: Number(loadavg()[0].toFixed(2)) } },
    rows
  }
  writeFileSync(join(resultsDir, `${name}.json`), JSON.stringify(result, null, 2) + '\n')
  console.log(`\n${name} (${result.seconds} s; ${machine.model}, ${machine.cpus} cores, node ${machine.node})`)
  console.table(rows)
}
// Worker threads (the verify pool) and libp2p timers may outlive the benchmarks; every child
// process and database was cleaned up above.
process.exit(0)
