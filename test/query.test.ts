import t from 'tap'
import { createHash } from 'node:crypto'
import { LedgerState } from '../src/ledger/state.js'
import { runQuery } from '../src/commands/bring.js'
import { chainEntries, GENESIS_HASH, type LedgerOp } from '../src/ledger/entry.js'
import { parseCommandLine } from '../src/commands/parser.js'
import type { ValueNode } from '../src/commands/ast.js'
import type { Policy } from '../src/policies/policy.js'

let counter = 0
const withId = (policy: Policy): Policy => {
  const type = Object.keys(policy)[0]
  return { [type]: { ...policy[type], id: createHash('sha256').update(String(counter++)).digest('hex'), date: '2026-11-25T00:00:00.000000Z' } }
}
const resolve = (v: ValueNode) => v.kind === 'literal' ? v.text : undefined

function stateWith (policies: Policy[]): LedgerState {
  const state = new LedgerState()
  const ops: LedgerOp[] = policies.map(policy => ({ op: 'put', policy }))
  for (const entry of chainEntries({ seq: 0, hash: GENESIS_HASH }, ops)) state.apply(entry)
  return state
}

function query (state: LedgerState, command: string) {
  return runQuery(state, parseCommandLine(command).query!, resolve)
}

const master = withId({ master: { name: 'm1', ip: '10.0.0.1', port: 32048, company: 'Acme' } })
const w1 = withId({ worker: { name: 'w1', ip: '10.0.0.2', port: 4001, company: 'Acme', city: 'Paris' } })
const w2 = withId({ worker: { name: 'w2', ip: '10.0.0.3', port: 2000, company: 'acme', city: 'Oslo' } })
const w3 = withId({ worker: { name: 'w3', ip: '10.0.0.3', port: 5000, company: 'Other', city: 'Paris' } })
const state = stateWith([master, w1, w2, w3])

t.test('no bring: JSON arrays of policies with the ledger field after date', async t => {
  const out = query(state, 'blockchain get worker where name=w1')
  t.equal(out.contentType, 'json')
  t.same(Object.keys((out.value as Policy[])[0].worker), ['name', 'ip', 'port', 'company', 'city', 'id', 'date', 'ledger'])
  t.match(out.value, [{ worker: { name: 'w1', ledger: 'global' } }])
  t.equal(query(state, 'blockchain get worker where name=nobody').text, '[]')
})

t.test('where: case-insensitive equality, numbers, and/or/parentheses', async t => {
  t.equal(query(state, 'blockchain get worker where company=ACME bring.count').text, '2')
  t.equal(query(state, 'blockchain get worker where port=4001 bring [worker][name]').text, 'w1')
  t.equal(query(state, 'blockchain get worker where port > 3000 bring [worker][name] separator=,').text, 'w1,w3')
  t.equal(query(state, 'blockchain get worker where company = acme and (port > 3000 or city = Oslo) bring [worker][name] separator=,').text, 'w1,w2')
  t.equal(query(state, 'blockchain get worker where city != Paris bring [worker][name]').text, 'w2')
  t.equal(query(state, 'blockchain get worker where missing_field = x bring.count').text, '0')
})

t.test('bring formats', async t => {
  t.equal(query(state, 'blockchain get (master, worker) bring [*][name] separator=,').text, 'm1,w1,w2,w3')
  t.equal(query(state, 'blockchain get * bring.count').text, '4')
  t.equal(query(state, 'blockchain get worker bring.unique [worker][ip] separator=,').text, '10.0.0.2,10.0.0.3')
  t.equal(query(state, 'blockchain get master bring.ip_port').text, '10.0.0.1:32048')
  t.equal(query(state, 'blockchain get master bring [master][ip] : [master][port]').text, '10.0.0.1:32048')
  t.equal(query(state, 'blockchain get worker bring.first [worker][name]').text, 'w1')
  t.equal(query(state, 'blockchain get worker bring.recent [worker][name]').text, 'w3')
  t.same(query(state, 'blockchain get worker where name=w2 bring.json [worker][name] [worker][port]').value, [{ worker: { name: 'w2', port: 2000 } }])
  const table = query(state, 'blockchain get worker bring.table [worker][name] [worker][port]')
  t.same((table.value as { columns: string[] }).columns, ['name', 'port'])
  t.match(table.text, /name\s+port\s*\n\s*-+\|-+\|\n\s*w1\s*\|4001\s*\|/)
  t.equal(query(state, 'blockchain get worker bring [worker][name]').text, 'w1\nw2\nw3', 'the default separator is a newline')
})

t.test('deletes and local policies', async t => {
  const s = stateWith([w1, w2])
  const tombstone = withId({ delete: { policy_id: w1.worker.id } })
  for (const entry of chainEntries({ seq: 2, hash: 'x'.repeat(64) }, [{ op: 'delete', policy: tombstone }])) s.apply(entry)
  t.equal(query(s, 'blockchain get worker bring [worker][name]').text, 'w2')
  const local = withId({ worker: { name: 'w9' } })
  s.addLocal(local)
  t.match(query(s, 'blockchain get worker where name=w9').value, [{ worker: { ledger: 'local' } }])
  for (const entry of chainEntries({ seq: 3, hash: 'y'.repeat(64) }, [{ op: 'put', policy: local }])) s.apply(entry)
  t.match(query(s, 'blockchain get worker where name=w9').value, [{ worker: { ledger: 'global' } }], 'ordered by the master: now global')
})

t.test('an indexed query does not scan: 10,000 policies', async t => {
  const many = Array.from({ length: 10_000 }, (_, i) => withId({ worker: { name: `n${i}`, port: i, zone: `z${i % 100}` } }))
  const big = stateWith(many)
  big.stats.scanned = 0
  t.equal(query(big, 'blockchain get worker where name=n4242 bring [worker][port]').text, '4242')
  t.equal(big.stats.scanned, 0, 'a lookup by an eagerly indexed field examines no policy')
  t.equal(query(big, 'blockchain get worker where zone=z7 bring.count').text, '100')
  t.equal(big.stats.scanned, 10_000, 'the first query by a new field builds its index with one scan')
  big.stats.scanned = 0
  t.equal(query(big, 'blockchain get worker where zone=Z7 or zone=z8 bring.count').text, '200')
  t.equal(big.stats.scanned, 0, 'later queries by that field use the index')
  const extra = withId({ worker: { name: 'late', zone: 'z7' } })
  for (const entry of chainEntries({ seq: 10_000, hash: 'z'.repeat(64) }, [{ op: 'put', policy: extra }])) big.apply(entry)
  t.equal(query(big, 'blockchain get worker where zone=z7 bring.count').text, '101', 'the lazy index is kept current')
  t.equal(big.stats.scanned, 0)
})

t.test('a policy type given by reference, as AnyLog writes `blockchain get !node_type`', async t => {
  const vars: Record<string, string> = { node_type: 'operator', other: 'worker', empty: '' }
  const byRef = (v: ValueNode): unknown => v.kind === 'var' ? vars[v.name] : resolve(v)
  const op = withId({ operator: { name: 'op1', company: 'Acme', local_ip: '10.0.0.9', port: 32148 } })
  const s = stateWith([master, w1, op])
  const run = (command: string) => runQuery(s, parseCommandLine(command).query!, byRef)
  t.equal(run('blockchain get !node_type where company = Acme and local_ip = 10.0.0.9 and port = 32148 bring [operator][name]').text, 'op1')
  t.equal(run('blockchain get (master, !other) bring.count').text, '2')
  t.same(parseCommandLine('blockchain get worker').query, { types: ['worker'] }, 'a literal type needs no resolving')
  t.throws(() => run('blockchain get !empty bring.count'), { code: 'bad_command', message: /the policy type !empty is empty/ })
  t.equal(run('blockchain get operator bring.ip_port').text, '10.0.0.9:32148', 'ip_port reads local_ip when there is no ip')
})
