import t from 'tap'
import { freePort, waitFor } from './helpers/net.js'
import { insert, profile, startMaster, startWorker, waitRunning } from './helpers/fleet.js'
import { startNode } from './helpers/node-process.js'

// LEDGER_CONN as a list (clients rotate through masters): real master, slave and worker
// processes on 127.0.0.1, the first address of every list dead (nothing listens there).
// Nothing here asserts a duration.

t.test('LEDGER_CONN lists a dead address first: inserts, sync and a worker\'s lease go to the live master', async t => {
  const master = await startMaster(t)
  const dead = `127.0.0.1:${await freePort()}`
  // spaces around the comma, as an env file may write them
  const conns = `${dead} , ${master.ledgerConn}`
  const slave = await startNode(t, { type: 'slave', name: 'slave-a', master, env: { LEDGER_CONN: conns, SLOTS: 1 } })
  const worker = await startWorker(t, master, { name: 'w1', slave: 'slave-a', slots: 1, kinds: ['linkedin'], ledgerConn: conns })

  t.equal((await slave.ok('!ledger_conn')).text, `${dead},${master.ledgerConn}`, '$LEDGER_CONN is the whole list, without spaces')
  // the start-up scripts declared both nodes (`blockchain insert ... master = !ledger_conn`)
  await waitFor('slave-a and w1 declared on the master', async () => {
    const slaves = (await master.ok('blockchain get slave where name = slave-a bring.count')).text
    const workers = (await master.ok('blockchain get worker where name = w1 bring.count')).text
    return slaves === '1' && workers === '1' ? true : undefined
  })

  // an insert from a replica: the dead master is tried, then the live one orders it
  const sensor = await insert(slave, { sensor: { name: 'rotated-1' } })
  t.ok(sensor.seq > 0, 'the insert through the slave was ordered by the live master')
  t.equal((await master.ok('blockchain get sensor where name = rotated-1 bring.count')).text, '1', 'once, on the master')
  t.equal((await slave.ok('blockchain get sensor where name = rotated-1 bring.count')).text, '1', 'and the slave holds it (read-your-writes)')

  // sync from the master: what the master orders reaches the worker
  await insert(master, { sensor: { name: 'from-master' } })
  await waitFor('the worker to sync the master\'s insert', async () => (await worker.ok('blockchain get sensor where name = from-master bring.count')).text === '1' ? true : undefined)

  // the worker's lease: it runs the profile the master assigns it
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'li-1', 'linkedin', 'acme')
  await waitRunning(worker, ['li-1'])
  const processes = await worker.ok('get processes')
  t.match(processes.text, /Lease: valid/, 'the worker holds a valid lease from the live master')
  const status = (await worker.ok('get status where format=json')).json
  t.equal(status.sync.outbox, 0, 'nothing waits in the worker\'s outbox')
})

t.test('a bad element of LEDGER_CONN stops the node with a line naming it', async t => {
  const node = await startNode(t, { type: 'member', name: 'bad-list', join: false, noWait: true, env: { LEDGER_CONN: '127.0.0.1:32048, 127.0.0.1' } })
  await waitFor('the node to exit', () => node.exitCode !== undefined ? true : undefined)
  t.not(node.exitCode, 0)
  t.match(node.logs(), /LEDGER_CONN="127\.0\.0\.1:32048, 127\.0\.0\.1".*element 2 of 2 is "127\.0\.0\.1", not ip:port/)
})
