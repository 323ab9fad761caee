import t from 'tap'
import { CHECKS, checkHistory } from './robustness/checker.js'
import type { FinalEntry, History, Operation } from './robustness/history.js'
import { scheduleFor } from './robustness/schedule.js'

// The robustness checker itself: a clean hand-made history passes, and each kind of violation,
// written into it by hand, is caught by its check and by no other.

const K = 'a'.repeat(64)
const M = 'f'.repeat(64)
const hash = (seq: number): string => seq.toString(16).padStart(64, '0')
const entry = (seq: number, over: Partial<FinalEntry> = {}): FinalEntry => ({ seq, hash: hash(seq), op: 'put', id: `id-${seq}`, type: 'note', author: M, ...over })
const op = (over: Partial<Operation>): Operation => ({ client: 'c1', node: 'm1', kind: 'insert', invokeMs: 0, completeMs: 1, ok: true, ...over })

function clean (): History {
  return {
    operations: [
      op({ id: 'id-1', invokeMs: 0, completeMs: 10 }),
      op({ id: 'id-2', invokeMs: 20, completeMs: 30, node: 'w1' }),
      op({ kind: 'read', node: 'w1', invokeMs: 40, completeMs: 45, sees: ['id-1', 'id-2'] }),
      op({ id: 'id-x', invokeMs: 50, completeMs: 60, ok: false, answer: 'master_unreachable' })
    ],
    heads: [
      { node: 'm1', atMs: 5, seq: 1, hash: hash(1) }, { node: 'm1', atMs: 35, seq: 3, hash: hash(3) },
      { node: 'w1', atMs: 6, seq: 0 }, { node: 'w1', atMs: 36, seq: 2, hash: hash(2) }, { node: 'w1', atMs: 300, seq: 3 }
    ],
    runs: [
      { unit: 'p1', host: 'w1', startMs: 0, stopMs: 100 },
      { unit: 'p1', host: 'w2', startMs: 100, stopMs: 200 },
      { unit: 'p2', host: 'w2', startMs: 0 }
    ],
    final: [entry(1), entry(2, { author: K }), entry(3, { type: 'revocation', revokes: K })],
    served: [{ server: 'm1', key: K, atMs: 30, serverSeq: 2 }],
    texts: [{ where: 'm1 log', text: '{"msg":"policy accepted"}' }],
    secrets: ['hunter2'],
    healedAtMs: 100,
    syncIntervalMs: 100
  }
}

t.test('a clean history passes every check', async t => {
  t.same(checkHistory(clean()), [])
})

const broken: Array<[typeof CHECKS[number], (h: History) => void]> = [
  ['acknowledged_inserts_kept', h => { h.operations.push(op({ id: 'id-lost', invokeMs: 70, completeMs: 80 })) }],
  ['heads_never_move_back', h => { h.heads.push({ node: 'm1', atMs: 40, seq: 2 }) }],
  ['chains_are_prefixes', h => { h.heads.push({ node: 'w2', atMs: 40, seq: 2, hash: hash(99) }) }],
  ['replicas_converge', h => { h.heads.push({ node: 'w2', atMs: 250, seq: 1 }) }],
  ['read_your_writes', h => { h.operations.push(op({ kind: 'read', node: 'w1', invokeMs: 41, completeMs: 42, sees: ['id-1'] })) }],
  ['no_unit_on_two_hosts', h => { h.runs.push({ unit: 'p2', host: 'w1', startMs: 150, stopMs: 160 }) }],
  ['no_write_after_revocation', h => { h.final.push(entry(4, { author: K })); h.heads.push({ node: 'm1', atMs: 301, seq: 4 }, { node: 'w1', atMs: 302, seq: 4 }) }],
  ['no_stream_after_revocation', h => { h.served!.push({ server: 'w1', key: K, atMs: 50, serverSeq: 3 }) }],
  ['no_stream_after_revocation', h => { h.nodeKeys = { w2: K }; h.heads.push({ node: 'w2', atMs: 60, seq: 3 }) }],
  ['no_secret_shown', h => { h.texts!.push({ where: 'w1 GET /v1/status', text: 'password: hunter2' }) }],
  ['wiped_nodes_start_from_snapshots', h => { h.wipes = [{ node: 'w2', atMs: 10 }]; h.texts!.push({ where: 'w2 log', text: '{"msg":"no snapshot to start from: replaying the log"}' }) }]
]

t.test('each kind of violation is caught by its own check, and by no other', async t => {
  t.same([...new Set(broken.map(([check]) => check))].sort(), [...CHECKS].sort(), 'every check has a broken history here')
  for (const [check, breakIt] of broken) {
    const history = clean()
    breakIt(history)
    const violations = checkHistory(history)
    t.same(violations.map(v => v.check), [check], `${check}: ${violations[0]?.message ?? 'not caught'}`)
    t.ok(violations[0]?.evidence.length > 0, `${check}: with the records that show it`)
  }
})

t.test('a revoked node stays behind: not a convergence failure, as long as it never reaches its revocation', async t => {
  const history = clean()
  history.nodeKeys = { w2: K }
  history.heads.push({ node: 'w2', atMs: 20, seq: 2 }, { node: 'w2', atMs: 400, seq: 2 })
  t.same(checkHistory(history), [])
})

t.test('a lifted revocation: writes after the lifting are fine again', async t => {
  const history = clean()
  history.final.push(entry(4, { op: 'delete', id: 'tomb-4', target: 'id-3' }), entry(5, { author: K }))
  history.heads.push({ node: 'm1', atMs: 400, seq: 5 }, { node: 'w1', atMs: 401, seq: 5 })
  t.same(checkHistory(history), [])
})

t.test('a read scoped to some ids (a query by name) is judged on those only', async t => {
  const history = clean()
  history.operations.push(op({ kind: 'read', node: 'w1', invokeMs: 41, completeMs: 42, sees: ['id-1'], scope: ['id-1'] }))
  t.same(checkHistory(history), [], 'not seeing id-2 is fine: it did not ask for it')
  history.operations.push(op({ kind: 'read', node: 'w1', invokeMs: 43, completeMs: 44, sees: [], scope: ['id-2'] }))
  t.same(checkHistory(history).map(v => v.check), ['read_your_writes'], 'not seeing what it asked for is not')
})

t.test('fault schedules: one seed one schedule; each fault hits a target of its kind and heals before the next begins', async t => {
  const loopback = { nodes: ['master-a', 'master-b', 's1', 'w1', 'w2', 'm1'], clockNodes: ['master-a', 'master-b', 'w1', 'w2', 'm1'], dbMasters: ['master-a', 'master-b'], workers: ['w1', 'w2'], profiles: ['p1', 'p2', 'p3'], regions: [], replicas: ['s1', 'w1', 'w2', 'm1'] }
  const level = { ...loopback, nodes: ['master-a', 's1', 'w1', 'w2', 'm1'], dbMasters: [] }
  const wan = { ...loopback, dbMasters: [], regions: ['region-0', 'region-1'] }
  const seen = new Set<string>()
  for (const [name, targets] of Object.entries({ loopback, level, wan })) {
    for (let seed = 1; seed <= 40; seed++) {
      const faults = scheduleFor(seed, 10 * 60_000, targets)
      t.same(scheduleFor(seed, 10 * 60_000, targets), faults, `${name} seed ${seed}: the same schedule again`)
      t.equal(faults.length, 40, 'one fault per 15 s slot')
      for (const [i, f] of faults.entries()) {
        seen.add(`${name}:${f.kind}`)
        const pool = { 'db-stall': targets.dbMasters, 'db-cut': targets.dbMasters, drain: targets.workers, replace: targets.profiles, partition: targets.regions, reset: targets.regions, 'slow-links': targets.regions, clock: targets.clockNodes, kill: targets.nodes, pause: targets.nodes, wipe: targets.replicas }[f.kind]
        if (!pool.includes(f.target)) t.fail(`${name} seed ${seed}: ${f.kind} hits ${f.target}, not one of ${pool.join(', ')}`)
        const next = faults[i + 1]
        if (next !== undefined && f.atMs + f.forMs > next.atMs) t.fail(`${name} seed ${seed}: fault ${i} lasts past the start of the next`)
      }
    }
  }
  t.ok(['kill', 'pause', 'clock', 'db-stall', 'db-cut', 'drain', 'replace', 'wipe'].every(k => seen.has(`loopback:${k}`)), 'loopback runs draw every kind they can')
  t.notOk([...seen].some(k => k.startsWith('level:db-') || k === 'loopback:partition'), 'no kind without a target: no db faults on LevelDB, no link faults on loopback')
  t.ok(['partition', 'reset', 'slow-links'].every(k => seen.has(`wan:${k}`)), 'the WAN draws link faults')
})

t.test('a wiped node is a new replica: its head may start lower, and its reads need not see what it acknowledged before', async t => {
  const moved = clean()
  moved.heads.push({ node: 'm1', atMs: 40, seq: 2 })
  moved.operations.push(op({ kind: 'read', node: 'w1', invokeMs: 41, completeMs: 42, sees: ['id-1'] }))
  t.same(checkHistory(moved).map(v => v.check), ['heads_never_move_back', 'read_your_writes'], 'without a wipe: both caught')
  moved.wipes = [{ node: 'm1', atMs: 38 }, { node: 'w1', atMs: 39 }]
  moved.texts!.push({ where: 'm1 log', text: '{"msg":"started from a snapshot; checking its authors\' signatures in the background"}' }, { where: 'w1 log', text: '{"msg":"started from a snapshot; checking"}' })
  t.same(checkHistory(moved), [], 'after its wipe: neither is a violation')
  moved.wipes = [{ node: 'm1', atMs: 50 }, { node: 'w1', atMs: 50 }]
  t.same(checkHistory(moved).map(v => v.check), ['heads_never_move_back', 'read_your_writes'], 'a wipe after them excuses nothing')
})
