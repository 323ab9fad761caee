import t from 'tap'
import { waitFor } from './helpers/net.js'
import { headSeq, recordHeads } from './helpers/heads.js'
import { startNode } from './helpers/node-process.js'
import { TcpProxy } from './helpers/tcp-proxy.js'

// Partitions (issue 8): a replica paused with SIGSTOP, and a replica cut off by a proxy, while
// clients insert. Each comes back and converges; no node's head ever moves backwards (every
// node's head is recorded throughout).

const SYNC_MS = 2000

t.test('a replica paused (SIGSTOP) or cut off during inserts converges after it comes back; heads never move backwards', async t => {
  const master = await startNode(t, { type: 'master', name: 'm' })
  const proxy = new TcpProxy({ host: '127.0.0.1', port: master.tcpPort })
  await proxy.start()
  t.teardown(async () => { await proxy.stop() })
  const paused = await startNode(t, { type: 'slave', name: 'paused', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: `${SYNC_MS} ms` } })
  const cut = await startNode(t, { type: 'slave', name: 'cut', master, env: { LEDGER_CONN: `127.0.0.1:${proxy.port}`, MASTERS_FROM_LEDGER: 'false', BLOCKCHAIN_SYNC: `${SYNC_MS} ms` } })
  const steady = await startNode(t, { type: 'slave', name: 'steady', env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: `${SYNC_MS} ms` } })
  const recorder = recordHeads(() => [master, paused, cut, steady], 50)

  let inserted = 0
  let stop = false
  const client = (async () => {
    for (let n = 0; n < 2000 && !stop; n++) {
      const response = await fetch(`${master.url}/v1/policies`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ item: { name: `i${n}` } }) })
      if (response.status === 201) inserted++
      await new Promise(resolve => setTimeout(resolve, 10))
    }
  })()
  await waitFor('some inserts', () => inserted >= 20 ? true : undefined)
  paused.proc.kill('SIGSTOP')
  proxy.partition()
  const before = inserted
  await waitFor('inserts while the two replicas are away', () => inserted >= before + 100 ? true : undefined, { timeoutMs: 30_000 })
  const pausedHead = await headSeq(steady)
  t.ok(pausedHead !== undefined && pausedHead > before, 'the steady replica follows meanwhile')
  paused.proc.kill('SIGCONT')
  proxy.heal()
  stop = true
  await client
  const masterHead = (await headSeq(master))!
  const comeBack = Date.now()
  for (const node of [paused, cut, steady]) {
    await waitFor(`${node.name} to converge on ${masterHead}`, async () => await headSeq(node) === masterHead ? true : undefined, { timeoutMs: SYNC_MS + 15_000 })
  }
  t.comment(`both returned replicas converged ${Date.now() - comeBack} ms after coming back (sync interval ${SYNC_MS} ms)`)
  t.pass('every replica converged on the master\'s head')
  // the recorder samples until it has enough to judge by, however busy the machine is
  await waitFor('50 head samples', () => recorder.samples() > 50 ? true : undefined, { timeoutMs: 60_000 })
  await recorder.stop()
  t.ok(recorder.samples() > 50, `${recorder.samples()} head samples recorded`)
  t.same(recorder.backwards, [], 'no head ever moved backwards')
})
