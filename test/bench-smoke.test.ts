import t from 'tap'
import { propagation } from '../bench/propagation.js'

// The benchmarks' smallest run, so they cannot rot; timings are not asserted here.
t.test('propagation benchmark, 2 replicas and 3 inserts', async t => {
  const result = await propagation({ replicas: 2, inserts: 3 })
  t.equal(result.replicas, 2)
  t.equal(result.inserts, 3)
  for (const key of ['p50_ms', 'p99_ms', 'max_ms'] as const) t.ok(Number.isFinite(result[key]) && result[key] >= 0, `${key} is a duration`)
  t.ok(result.p50_ms <= result.p99_ms && result.p99_ms <= result.max_ms, 'percentiles are ordered')
})
