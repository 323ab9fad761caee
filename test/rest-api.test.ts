import t from 'tap'
// @ts-expect-error the package ships no types
import parsePrometheus from 'parse-prometheus-text-format'
import { startNode } from './helpers/node-process.js'

const TOKEN = 'test-token-123'
const node = await startNode(t, { type: 'master', name: 'api-m', env: { REST_TOKEN: TOKEN } })
const auth = { Authorization: `Bearer ${TOKEN}` }

async function json (path: string, init: RequestInit = {}) {
  const response = await fetch(node.url + path, { ...init, signal: AbortSignal.timeout(20_000) })
  const text = await response.text()
  let body: any
  try { body = JSON.parse(text) } catch { body = text }
  return { status: response.status, body, headers: response.headers }
}

const postPolicy = async (policy: unknown, headers: Record<string, string> = auth) =>
  await json('/v1/policies', { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(policy) })

t.test('GET /health answers 200 with role, name and head', async t => {
  const { status, body } = await json('/health')
  t.equal(status, 200)
  // seq 1: the network's admission policy, seq 2: the master's declaration
  t.match(body, { status: 'ok', node: 'api-m', role: 'master', head: { seq: 2 } })
})

t.test('writes need the bearer token; reads do not', async t => {
  const anylog = await fetch(node.url, { method: 'POST', headers: { command: 'blockchain insert where policy=!p' }, body: '<p = {"item": {"name": "x"}}>' })
  t.equal(anylog.status, 401)
  t.match(await anylog.json(), { error: 'unauthorized', message: /Authorization: Bearer/ })
  t.equal((await postPolicy({ item: { name: 'no-token' } }, {})).status, 401)
  t.equal((await postPolicy({ item: { name: 'wrong' } }, { Authorization: 'Bearer nope-nope' })).status, 401)
  t.equal((await json('/v1/policies?type=item')).body.policies.length, 0, 'nothing was stored')
  t.equal((await json('/v1/policies?type=master')).status, 200, 'reads need no token')
  const ok = await postPolicy({ item: { name: 'with-token', color: 'Red' } })
  t.equal(ok.status, 201)
  t.match(ok.body, { id: /^[0-9a-f]{64}$/, seq: 3, ledger: 'global' })
})

t.test('GET /v1/policies filters by type and field, with a limit; one policy by id', async t => {
  for (const name of ['a1', 'a2', 'a3']) t.equal((await postPolicy({ item: { name, color: 'blue' } })).status, 201)
  const all = await json('/v1/policies?type=item')
  t.equal(all.body.policies.length, 4)
  t.equal(all.headers.get('x-ledgermesh-index'), String(all.body.index))
  t.equal((await json('/v1/policies?type=item&color=BLUE')).body.policies.length, 3, 'filters are case-insensitive')
  t.equal((await json('/v1/policies?type=item&color=blue&limit=2')).body.policies.length, 2)
  const id = all.body.policies[0].item.id
  t.match((await json(`/v1/policies/${id}`)).body, { item: { id, ledger: 'global' } })
  t.equal((await json(`/v1/policies/${'0'.repeat(64)}`)).status, 404)
  const bad = await json('/v1/policies/not-an-id')
  t.equal(bad.status, 400)
  t.match(bad.body, { error: 'bad_command', message: /id/ })
})

t.test('malformed bodies get 400 with a JSON error that names the problem', async t => {
  const notJson = await json('/v1/policies', { method: 'POST', headers: { 'content-type': 'application/json', ...auth }, body: '{"item": ' })
  t.equal(notJson.status, 400)
  t.equal(notJson.body.error, 'bad_command')
  const twoRoots = await postPolicy({ a: { name: 'x' }, b: { name: 'y' } })
  t.equal(twoRoots.status, 400)
  t.match(twoRoots.body, { error: 'bad_policy', message: /exactly one root key \(its type\), found 2: a, b/ })
  const wrongType = await postPolicy({ worker: { name: 'w', port: 'x' } })
  t.equal(wrongType.status, 400)
  t.match(wrongType.body, { error: 'bad_policy', message: /field 'port'/ })
})

t.test('blocking read: returns early on an insert, or when wait runs out', async t => {
  const { body } = await json('/v1/policies?type=item')
  const started = Date.now()
  const timedOut = await json(`/v1/policies?type=item&index=${body.index}&wait=300ms`)
  t.equal(timedOut.body.index, body.index, 'no change: the same index after the wait')
  t.ok(Date.now() - started >= 250, 'it did wait')
  const blocked = json(`/v1/policies?type=item&index=${body.index}&wait=30s`)
  setTimeout(() => { void postPolicy({ item: { name: 'wake-up' } }) }, 200)
  const woke = await blocked
  t.equal(woke.body.index, body.index + 1, 'answered once the ledger passed the index')
  t.ok(woke.body.policies.some((p: any) => p.item.name === 'wake-up'))
  t.equal((await json('/v1/policies?type=item&index=0&wait=often')).status, 400, 'a bad wait is a 400')
})

t.test('GET /v1/processes and /v1/ledger/head', async t => {
  t.equal((await json('/v1/processes')).body.TCP.Status, 'Running')
  const head = (await json('/v1/ledger/head')).body
  t.match(head, { seq: Number, hash: /^[0-9a-f]{64}$/, signed: { seq: head.seq, publicKey: /^[0-9a-f]{64}$/ } })
})

t.test('GET /metrics is Prometheus text with stable names and types, and moves with inserts', async t => {
  const scrape = async () => {
    const text = await (await fetch(node.url + '/metrics')).text()
    return new Map((parsePrometheus(text) as Array<{ name: string, type: string, metrics: Array<{ value: string, labels?: Record<string, string> }> }>).map(f => [f.name, f]))
  }
  const before = await scrape()
  for (const [name, type] of [
    ['ledgermesh_ledger_head_seq', 'GAUGE'], ['ledgermesh_replica_lag_seq', 'GAUGE'], ['ledgermesh_replica_lag_seconds', 'GAUGE'],
    ['ledgermesh_inserts_total', 'COUNTER'], ['ledgermesh_sync_bytes_total', 'COUNTER'], ['ledgermesh_sync_entries_total', 'COUNTER'],
    ['ledgermesh_rest_requests_total', 'COUNTER'], ['process_resident_memory_bytes', 'GAUGE']
  ]) {
    t.equal(before.get(name)?.type, type, `${name} is a ${type.toLowerCase()}`)
  }
  const accepted = (m: Map<string, any>) => Number(m.get('ledgermesh_inserts_total').metrics.find((x: any) => x.labels.result === 'accepted')?.value ?? 0)
  await postPolicy({ item: { name: 'counted' } })
  const after = await scrape()
  t.equal(accepted(after), accepted(before) + 1, 'inserts accepted went up by one')
  t.equal(Number(after.get('ledgermesh_ledger_head_seq').metrics[0].value), Number(before.get('ledgermesh_ledger_head_seq').metrics[0].value) + 1)
})

t.test('ledgermesh cmd sends a command and exits 1 with the error on failure', async t => {
  const { spawnSync } = await import('node:child_process')
  const { CLI, POLYFILL } = await import('./helpers/node-process.js')
  const run = (...args: string[]) => spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'cmd', '--node', node.url, ...args], { encoding: 'utf8', timeout: 20_000, env: { ...process.env, REST_TOKEN: '' } })
  const read = run('blockchain get master bring.count')
  t.equal(read.status, 0)
  t.equal(read.stdout, '1\n')
  const unknown = run('frobnicate')
  t.equal(unknown.status, 1)
  t.match(unknown.stderr, /ledgermesh: 400: unknown command 'frobnicate'/)
  const noToken = run('blockchain insert where policy=!p')
  t.equal(noToken.status, 1)
  t.match(noToken.stderr, /401: writes to this node need the header/)
  const { freePort } = await import('./helpers/net.js')
  const nobody = `http://127.0.0.1:${await freePort()}`
  const unreachable = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'cmd', '--node', nobody, 'get status'], { encoding: 'utf8', timeout: 20_000 })
  t.equal(unreachable.status, 1)
  t.match(unreachable.stderr, `cannot reach ${nobody}`)
})

t.test('the node serves its OpenAPI document', async t => {
  const { status, body } = await json('/openapi.json')
  t.equal(status, 200)
  t.match(body, { openapi: /^3\./, info: { title: 'ledgermesh node' } })
  for (const path of ['/', '/health', '/metrics', '/v1/policies', '/v1/policies/{id}', '/v1/processes', '/v1/ledger/head']) {
    t.ok(body.paths[path], `documents ${path}`)
  }
  t.ok(body.paths['/v1/policies'].get.parameters.some((p: any) => p.name === 'index'), 'with the blocking-read parameters')
})

t.test('ledgermesh attach: a remote REPL whose variables live on the node', async t => {
  const { spawnSync } = await import('node:child_process')
  const { CLI, POLYFILL } = await import('./helpers/node-process.js')
  const input = [
    'x = 7',
    '!x',
    '<p = {"item": {',
    '   "name": "attached", "n": !x.int',
    '}}>',
    'blockchain insert where policy=!p',
    'blockchain get item where name=attached bring [item][n]',
    'no such command',
    'quit'
  ].join('\n') + '\n'
  const run = spawnSync(process.execPath, ['--import', POLYFILL, CLI, 'attach', '--node', node.url, '--token', TOKEN], { input, encoding: 'utf8', timeout: 30_000 })
  t.equal(run.status, 0)
  const out = run.stdout.split('\n').filter(l => l !== '')
  t.equal(out[0], '7')
  t.match(out[1], /^Policy [0-9a-f]{64} inserted \(global, seq \d+\)$/)
  t.equal(out[2], '7')
  t.match(run.stderr, /Error: 400: unknown command 'no such command'/)
})

t.test('a replica whose source went silent reports 503 with the reason', async t => {
  const { waitFor } = await import('./helpers/net.js')
  const master = await startNode(t, { type: 'master', name: 'health-m' })
  const replica = await startNode(t, { type: 'member', name: 'health-r', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second' } })
  const healthy = await fetch(`${replica.url}/health`)
  t.equal(healthy.status, 200)
  await master.stop()
  const reason = await waitFor('the replica to report a stalled sync', async () => {
    const response = await fetch(`${replica.url}/health`)
    return response.status === 503 ? (await response.json()).reason : undefined
  }, { timeoutMs: 30_000, everyMs: 500 })
  t.match(reason, /sync stalled: last heard from the source \d+ s ago/)
})
