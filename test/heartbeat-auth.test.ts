import t from 'tap'
import { randomBytes } from 'node:crypto'
import { startNode } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'
import { Ed25519Signer } from '../src/policies/keys.js'
import { preparePolicy } from '../src/policies/prepare.js'
import { heartbeatProof } from '../src/policies/heartbeat-proof.js'

// Profile runners on the workers' hosts report to their slave without the REST token (a worker
// does not hand its runners an admin credential): the heartbeat route is open to them, but a
// heartbeat counts only with its worker's proof (HEARTBEAT_PROOF); every other write still
// needs the token. Found by the WAN harness, where every runner is on
// another host than its slave.

t.test('a slave with REST_TOKEN takes heartbeats without it, with the worker\'s proof only, and nothing else', async t => {
  const token = 'wan-heartbeat-token'
  const master = await startNode(t, { type: 'master', name: 'hb-master', env: { REST_TOKEN: token } })
  const slave = await startNode(t, { type: 'slave', name: 'hb-slave', env: { LEDGER_CONN: master.ledgerConn, REST_TOKEN: token } })
  // a worker declared on the ledger with its own key (admitted, signed here, inserted through the master)
  const worker = new Ed25519Signer(randomBytes(32))
  const admitted = await master.command(`admit node where key = ${worker.publicKey}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })
  t.equal(admitted.status, 200, `its key is admitted: ${admitted.text}`)
  const declared = await fetch(`${master.url}/v1/policies`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify(preparePolicy({ worker: { name: 'worker-x', slave: 'hb-slave', slots: 1 } }, worker)),
    signal: AbortSignal.timeout(10_000)
  })
  t.equal(declared.status, 201, `the worker is declared: ${await declared.text()}`)
  await waitFor('the slave to hold the worker', async () => (await slave.ok('blockchain get worker where name = worker-x bring.count')).text === '1' ? true : undefined)
  const profileId = 'a'.repeat(64)
  const beat = async (fields: Record<string, unknown>): Promise<Response> => await fetch(`${slave.url}/v1/profiles/heartbeat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ profile_id: profileId, profile_name: 'p-1', kind: 'demo', worker: 'worker-x', pid: 4242, state: 'running', ...fields }),
    signal: AbortSignal.timeout(10_000)
  })
  t.equal((await beat({ proof: heartbeatProof(worker, profileId, 'worker-x') })).status, 204, 'a heartbeat with the worker\'s proof is taken, without the REST token')
  const reports = await (await fetch(`${slave.url}/v1/profiles/reports`, { signal: AbortSignal.timeout(10_000) })).json() as { profiles: Array<{ profile_name: string, runs: Array<{ worker: string, pid: number }> }> }
  t.same(reports.profiles.find(p => p.profile_name === 'p-1')?.runs.map(r => [r.worker, r.pid]), [['worker-x', 4242]], 'and recorded')

  const stranger = new Ed25519Signer(randomBytes(32))
  const refusals = [
    ['no proof', await beat({ pid: 5001 })],
    ['a proof signed by another key', await beat({ pid: 5002, proof: heartbeatProof(stranger, profileId, 'worker-x') })],
    ['the worker\'s proof for another profile', await beat({ pid: 5003, proof: heartbeatProof(worker, 'b'.repeat(64), 'worker-x') })],
    ['a worker not on the ledger', await beat({ pid: 5004, worker: 'worker-y', proof: heartbeatProof(worker, profileId, 'worker-y') })]
  ] as const
  for (const [what, reply] of refusals) t.equal(reply.status, 403, `${what}: refused`)
  const after = await (await fetch(`${slave.url}/v1/profiles/reports`, { signal: AbortSignal.timeout(10_000) })).json() as { profiles: Array<{ profile_name: string, runs: Array<{ pid: number }> }> }
  t.same(after.profiles.find(p => p.profile_name === 'p-1')?.runs.map(r => r.pid), [4242], 'none of them was recorded')

  const insert = await fetch(`${slave.url}/v1/policies`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ probe: { name: 'no-token' } }),
    signal: AbortSignal.timeout(10_000)
  })
  t.equal(insert.status, 401, 'a policy insert without the token is refused')
  const bad = await fetch(`${slave.url}/v1/profiles/heartbeat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ profile_id: 'not-an-id', worker: 'w', pid: 1 }),
    signal: AbortSignal.timeout(10_000)
  })
  t.equal(bad.status, 400, 'a malformed heartbeat is still refused by its schema')
})
