import t from 'tap'
import { startNode } from './helpers/node-process.js'

// Profile runners on the workers' hosts report to their slave without the REST token (a worker
// does not hand its runners an admin credential): the heartbeat route is open to them, every
// other write still needs the token. Found by the WAN harness, where every runner is on
// another host than its slave.

t.test('a slave with REST_TOKEN takes heartbeats without it, and nothing else', async t => {
  const token = 'wan-heartbeat-token'
  const master = await startNode(t, { type: 'master', name: 'hb-master', env: { REST_TOKEN: token } })
  const slave = await startNode(t, { type: 'slave', name: 'hb-slave', env: { LEDGER_CONN: master.ledgerConn, REST_TOKEN: token } })
  const heartbeat = await fetch(`${slave.url}/v1/profiles/heartbeat`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ profile_id: 'a'.repeat(64), profile_name: 'p-1', kind: 'demo', worker: 'worker-x', pid: 4242, state: 'running' }),
    signal: AbortSignal.timeout(10_000)
  })
  t.equal(heartbeat.status, 204, 'the heartbeat is taken')
  const reports = await (await fetch(`${slave.url}/v1/profiles/reports`, { signal: AbortSignal.timeout(10_000) })).json() as { profiles: Array<{ profile_name: string, runs: Array<{ worker: string, pid: number }> }> }
  t.same(reports.profiles.find(p => p.profile_name === 'p-1')?.runs.map(r => [r.worker, r.pid]), [['worker-x', 4242]], 'and recorded')
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
