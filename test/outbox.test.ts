import t from 'tap'
import { startNode } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

const sensor = '<p = {"sensor": {"name": "offline-1"}}>'

t.test('master stopped: replicas keep answering, local inserts wait in a durable outbox and land exactly once', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  const worker = await startNode(t, { type: 'worker', name: 'w', env: { LEDGER_CONN: master.ledgerConn, SLAVE_NAME: 's1' } })
  await master.stop()

  t.equal((await worker.ok('blockchain get master bring.count')).text, '1', 'reads keep working from the replica')

  const refused = await worker.command('blockchain insert where policy=!p', { method: 'POST', body: sensor })
  t.equal(refused.status, 503, 'without local=true the insert fails clearly')
  t.equal(refused.json.error, 'master_unreachable')

  const local = await worker.command('blockchain insert where policy=!p and local=true', { method: 'POST', body: sensor })
  t.equal(local.status, 200, local.text)
  t.match(local.text, /inserted \(local\)/)
  t.match((await worker.ok('blockchain get sensor')).json, [{ sensor: { name: 'offline-1', ledger: 'local' } }], 'visible here as local')

  await worker.stop()
  const restarted = await startNode(t, { type: 'worker', name: 'w', env: { LEDGER_CONN: master.ledgerConn, SLAVE_NAME: 's1' }, home: worker.home, tcpPort: worker.tcpPort, restPort: worker.restPort })
  t.match((await restarted.ok('blockchain get sensor')).json, [{ sensor: { name: 'offline-1', ledger: 'local' } }], 'the outbox survived the restart')
  t.equal((await restarted.ok('get status where format=json')).json.sync.outbox, 1)

  const back = await startNode(t, { type: 'master', name: 'm', home: master.home, tcpPort: master.tcpPort, restPort: master.restPort })
  await waitFor('the outbox insert to reach the master', async () => (await back.ok('blockchain get sensor bring.count')).text === '1' ? true : undefined, { timeoutMs: 30_000 })
  await waitFor('the worker to see it as global', async () => {
    const got = (await restarted.ok('blockchain get sensor')).json
    return got.length === 1 && got[0].sensor.ledger === 'global' ? true : undefined
  }, { timeoutMs: 30_000 })
  // It went when sync came back, or on the outbox's own retry if that came first (both wait
  // at most the first retry interval after the restart); never after a failed attempt with
  // the master back, which would mean it waited out a backoff.
  const sentOnRecovery = restarted.stderr.some(line => line.includes('sync works again: sending the outbox now'))
  const accepted = restarted.stderr.filter(line => line.includes('outbox insert accepted by the master'))
  t.ok(sentOnRecovery || accepted.length === 1, `the outbox was sent when sync worked again, or by its first retry with the master back (${sentOnRecovery ? 'sync' : 'retry'})`)
  t.equal((await back.ok('blockchain get sensor where name=offline-1 bring.count')).text, '1', 'exactly once on the master')
  t.equal((await restarted.ok('blockchain get sensor where name=offline-1 bring.count')).text, '1', 'exactly once on the worker')
  await waitFor('the outbox to drain', async () => (await restarted.ok('get status where format=json')).json.sync.outbox === 0 ? true : undefined)
})

t.test('local=true with the master cut off (its packets held, not refused): answered from the outbox at once, sent on when the path is back', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  const proxy = new TcpProxy({ host: '127.0.0.1', port: master.tcpPort })
  await proxy.start()
  t.teardown(async () => { await proxy.stop() })
  const member = await startNode(t, { type: 'worker', name: 'w', master, env: { LEDGER_CONN: `127.0.0.1:${proxy.port}`, MASTERS_FROM_LEDGER: 'false', SLAVE_NAME: 's1' } })
  proxy.stall() // the connection stays open and every byte on it waits: the master neither answers nor refuses

  const body = '<p = {"sensor": {"name": "cut-off-1"}}>'
  const local = await member.command('blockchain insert where policy=!p and local=true', { method: 'POST', body })
  t.equal(local.status, 200, local.text)
  t.match(local.text, /inserted \(local\)/, 'kept here')
  t.ok(member.stderr.some(line => line.includes('no master answered within') && line.includes('kept in the outbox')), 'answered once its bound passed, not after the masters\' whole retry budget')
  t.equal((await master.ok('blockchain get sensor bring.count')).text, '0', 'the master has not got it')

  proxy.unstall()
  await waitFor('the outbox insert to reach the master', async () => (await master.ok('blockchain get sensor where name=cut-off-1 bring.count')).text === '1' ? true : undefined, { timeoutMs: 30_000 })
  await waitFor('the member to see it as global', async () => {
    const got = (await member.ok('blockchain get sensor')).json
    return got.length === 1 && got[0].sensor.ledger === 'global' ? true : undefined
  }, { timeoutMs: 30_000 })
  t.equal((await master.ok('blockchain get sensor where name=cut-off-1 bring.count')).text, '1', 'exactly once on the master')
})
