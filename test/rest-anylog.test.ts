import t from 'tap'
import { startNode } from './helpers/node-process.js'

// One master for the whole file: every case is a request against the same running node.
const node = await startNode(t, { type: 'master', name: 'rest-master' })

const workerBody = (name: string) => `<new_policy = {"worker": {"name": "${name}", "company": "test co", "ip": "127.0.0.1", "port": 4001}}>`

t.test('get processes where format=json lists the running services (AnyLog shape)', async t => {
  const reply = await node.command('get processes where format=json')
  t.equal(reply.status, 200)
  for (const name of ['TCP', 'REST', 'Blockchain Sync', 'Scheduler']) {
    t.equal(reply.json[name].Status, 'Running', `${name} is Running`)
    t.type(reply.json[name].Details, 'string')
  }
  t.same(reply.json.MQTT, { Status: 'Not declared' })
  t.match(reply.json.REST.Details, `Listening on: 127.0.0.1:${node.restPort}`)
})

t.test('get processes as text is AnyLog\'s table', async t => {
  const reply = await node.command('get processes')
  t.equal(reply.status, 200)
  t.match(reply.text, /Process\s+Status\s+Details/)
  t.match(reply.text, /TCP\s+\|Running\s+\|Listening on: 127\.0\.0\.1:/)
  t.match(reply.text, /Operator\s+\|Not declared\|/)
})

t.test('any User-Agent works, and the command may come as a query parameter', async t => {
  for (const agent of ['AnyLog/1.23', 'curl/8.0', 'Mozilla/5.0']) {
    const response = await fetch(node.url, { headers: { command: 'get status', 'User-Agent': agent } })
    t.equal(response.status, 200, agent)
    t.match(await response.text(), /rest-master@127\.0\.0\.1:\d+ running/)
  }
  const response = await fetch(`${node.url}/?command=${encodeURIComponent('blockchain get master bring.count')}`)
  t.equal(await response.text(), '1')
})

t.test('a policy inserted by POST with the variable bound in the body', async t => {
  const insert = await node.command('blockchain insert where policy=!new_policy and local=true and master=!ledger_conn', { method: 'POST', body: workerBody('w1') })
  t.equal(insert.status, 200, insert.text)
  const got = await node.command('blockchain get worker where name=w1')
  t.equal(got.status, 200)
  t.match(got.json, [{ worker: { name: 'w1', company: 'test co', ledger: 'global' } }])
  t.equal((await node.command('blockchain get worker where name = W1 bring.count')).text, '1', 'matching is case-insensitive')
  t.equal((await node.command('blockchain get (master, worker) bring [*][name] separator=,')).text, 'rest-master,w1')
  const body = got.json[0].worker
  const del = await node.command(`blockchain delete policy where id=${body.id}`, { method: 'POST' })
  t.equal(del.status, 200, del.text)
  t.same((await node.command('blockchain get worker where name=w1')).json, [], 'deleted')
})

t.test('a write sent by GET gets 400 with a JSON error', async t => {
  const reply = await node.command('blockchain insert where policy=!x', { method: 'GET' })
  t.equal(reply.status, 400)
  t.equal(reply.json.error, 'wrong_method')
  t.equal(reply.json.err_code, 156)
  t.match(reply.json.message, /send it with POST/)
})

t.test('reads and assignments sent by POST are answered, as AnyLog answers its clients', async t => {
  const read = await node.command('get status', { method: 'POST' })
  t.equal(read.status, 200, read.text)
  t.match(read.text, /running/)
  const set = await node.command('company_name = New Company', { method: 'POST' })
  t.equal(set.status, 200, set.text)
  t.equal((await node.command('!company_name')).text, 'New Company', 'the assignment set the node variable')
})

t.test('bad requests get a JSON error that names the problem and change nothing', async t => {
  const before = (await node.ok('get status where format=json')).json.ledger.head
  const cases: Array<[string, string | undefined, number, string, RegExp]> = [
    ['frobnicate now', undefined, 400, 'unknown_command', /unknown command 'frobnicate now'/],
    ['blockchain get', undefined, 400, 'bad_command', /blockchain get/],
    ['blockchain insert where policy=!p', '<p = {"worker": {"name": "bad", >', 400, 'bad_command', /./],
    ['blockchain insert where policy=!p', '<p = {"a": {"name": "x"}, "b": {"name": "y"}}>', 400, 'bad_policy', /exactly one root key/],
    ['blockchain insert where policy=!p', '<p = {"worker": 5}>', 400, 'bad_policy', /must be a JSON object/],
    ['blockchain insert where policy=!p', '<p = [1, 2]>', 400, 'bad_policy', /./],
    ['blockchain insert where policy=!undefined_var', undefined, 400, 'bad_command', /!undefined_var is not defined/],
    ['blockchain insert where policy=!p', '<p = {"worker": {"name": "w9", "port": "not a port"}}>', 400, 'bad_policy', /port/],
    ['blockchain delete policy where id=0000000000000000000000000000000000000000000000000000000000000000', undefined, 404, 'not_found', /no policy with id/]
  ]
  for (const [command, body, status, code, message] of cases) {
    const reply = await node.command(command, { method: command.startsWith('blockchain get') || command.startsWith('frob') ? 'GET' : 'POST', body })
    t.equal(reply.status, status, `${command} ${body ?? ''}`)
    t.equal(reply.json?.error, code, `${command}: ${reply.text}`)
    t.match(reply.json?.message, message)
  }
  const after = (await node.ok('get status where format=json')).json.ledger.head
  t.same(after, before, 'the ledger is unchanged')
  t.equal((await node.command('get status')).status, 200, 'the node keeps answering')
})

t.test('the same policy twice: the second is a duplicate', async t => {
  const first = await node.command('blockchain insert where policy=!p', { method: 'POST', body: workerBody('dup').replace('new_policy', 'p') })
  t.equal(first.status, 200, first.text)
  const second = await node.command('blockchain insert where policy=!p', { method: 'POST', body: workerBody('dup').replace('new_policy', 'p') })
  t.equal(second.status, 409)
  t.equal(second.json.error, 'duplicate_id')
  t.equal(second.json.err_code, 70)
})

t.test('no command header is a clear 400', async t => {
  const response = await fetch(node.url, { headers: { 'User-Agent': 'AnyLog/1.23' } })
  t.equal(response.status, 400)
  t.match(await response.json(), { error: 'bad_command', message: /missing the `command` header/ })
})
