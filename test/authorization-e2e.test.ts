import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'

// Authorization end to end (issue 8): a worker node tries to write what only the master, an
// admin or another node may write; REST writes come without the token. Every attempt is
// refused with an error that says why, and the ledger does not change.

async function post (node: NodeProcess, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number, body: any }> {
  const response = await fetch(`${node.url}/v1/policies`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })
  return { status: response.status, body: await response.json() }
}

async function head (node: NodeProcess, headers: Record<string, string> = {}): Promise<number> {
  return ((await (await fetch(`${node.url}/v1/ledger/head`, { headers })).json()) as { seq: number }).seq
}

t.test('a node cannot write another node\'s declaration, an assignment or an admin policy, nor delete what it does not own', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  const slave = await startNode(t, { type: 'slave', name: 's1', env: { LEDGER_CONN: master.ledgerConn } })
  const worker = await startNode(t, { type: 'worker', name: 'w1', env: { LEDGER_CONN: master.ledgerConn, SLAVE_NAME: 's1' } })
  const before = await head(master)
  const masterId = (await master.ok('blockchain get master bring [master][id]')).text.trim()

  const attempts: Array<[string, unknown, RegExp]> = [
    ['another node\'s declaration', { slave: { name: 's1', company: 'evil', ip: '10.6.6.6' } }, /slave 's1' is declared by key .* may not replace it/],
    ['an assignment', { assignment: { profile: 'p', worker: 'w1' } }, /may not write assignment policies: only the master or an admin may/],
    ['an admin policy', { admin: { name: 'me', key: 'a'.repeat(64) } }, /may not write admin policies/],
    ['a master declaration', { master: { name: 'm2' } }, /may not declare a master/]
  ]
  for (const [what, policy, message] of attempts) {
    const reply = await post(worker, policy)
    t.equal(reply.status, 403, `${what}: 403`)
    t.equal(reply.body.error, 'unauthorized', `${what}: unauthorized`)
    t.match(reply.body.message, message, `${what}: the error says why`)
  }
  const del = await worker.command(`blockchain delete policy where id = ${masterId}`)
  t.equal(del.status, 403, 'deleting the master\'s declaration: 403')
  t.match(del.text, /may not delete master policy/)

  // a policy whose signature does not match its content (signed, then altered)
  const signed = preparePolicy({ note: { name: 'x' } }, new Ed25519Signer(randomBytes(32))) as { note: { name: string } }
  signed.note.name = 'tampered'
  const forged = await post(worker, signed)
  t.equal(forged.status, 400)
  t.equal(forged.body.error, 'bad_signature', 'an altered signed policy: bad_signature')

  t.equal(await head(master), before, 'the master\'s ledger did not change')
  t.equal((await slave.ok('blockchain get slave bring.count')).text.trim(), '1', 'the slave\'s declaration is untouched')
  t.match(master.logs(), /"code":"unauthorized"[^\n]*"msg":"(policy rejected|insert refused)"/, 'the master logged the refusals')
})

t.test('REST writes need the token; with REST_READ_AUTH reads do too', async t => {
  const token = 'secret-token-42'
  const master = await startNode(t, { type: 'master', name: 'm', env: { REST_TOKEN: token } })
  const readAuth = await startNode(t, { type: 'master', name: 'm2', env: { REST_TOKEN: token, REST_READ_AUTH: 'true' } })
  const before = await head(master)
  const none = await post(master, { note: { name: 'x' } })
  t.equal(none.status, 401, 'no token: 401')
  t.match(none.body.message, /Bearer/, 'the error says what is missing')
  const wrong = await post(master, { note: { name: 'x' } }, { authorization: 'Bearer wrong-token' })
  t.equal(wrong.status, 401, 'a wrong token: 401')
  const anylog = await master.command('blockchain insert where policy = !p')
  t.equal(anylog.status, 401, 'AnyLog-style POST without the token: 401')
  t.equal(await head(master), before, 'nothing was stored')
  t.equal((await fetch(`${master.url}/v1/ledger/head`)).status, 200, 'reads need no token by default')
  const ok = await post(master, { note: { name: 'x' } }, { authorization: `Bearer ${token}` })
  t.equal(ok.status, 201, 'with the token the write goes through')

  t.equal((await fetch(`${readAuth.url}/v1/ledger/head`)).status, 401, 'REST_READ_AUTH: a read without the token is 401')
  t.equal((await readAuth.command('get status')).status, 401, 'REST_READ_AUTH: an AnyLog read without the token is 401')
  t.equal((await fetch(`${readAuth.url}/v1/ledger/head`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'with the token it answers')
})
