import t from 'tap'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadOrCreateIdentity } from '../src/node/identity.js'
import { startNode, type NodeProcess } from './helpers/node-process.js'
import { LEASE, getJson, insert, processesOf, profile, startSlave, startWorker, waitRunning } from './helpers/fleet.js'
import { freePort, waitFor } from './helpers/net.js'

// A light worker in a network whose policy names witnesses: real master, three witnesses
// (quorum 2), a slave and a light worker. The master's signed lease answers carry its
// checkpoint with the witnesses' cosignatures once a quorum cosigned it; the light worker
// keeps the latest such checkpoint, verified against the witnesses its held network policy names.

t.test('a light worker holds the latest witnessed checkpoint, cosigned by a quorum of the network\'s witnesses', async t => {
  const specs = await Promise.all([1, 2, 3].map(async i => {
    const home = mkdtempSync(join(tmpdir(), `lm-lw-witness${i}-`))
    t.teardown(() => rmSync(home, { recursive: true, force: true }))
    const { signer } = await loadOrCreateIdentity(home)
    return { name: `wit-${i}`, home, tcpPort: await freePort(), key: signer.publicKey }
  }))
  const master = await startNode(t, {
    type: 'master',
    name: 'master-1',
    env: { WITNESSES: specs.map(w => `${w.key}@127.0.0.1:${w.tcpPort}`).join(','), WITNESS_QUORUM: 2, LEASE_TTL: `${LEASE.ttlMs} ms`, LEASE_GRACE: `${LEASE.graceMs} ms` }
  })
  const startWitness = async (w: typeof specs[number]): Promise<NodeProcess> => await startNode(t, { type: 'member', name: w.name, home: w.home, tcpPort: w.tcpPort, env: { LEDGER_CONN: master.ledgerConn, BLOCKCHAIN_SYNC: '1 second', WITNESS: 'true' } })
  const witnesses = await Promise.all(specs.map(startWitness))
  await startSlave(t, master, 'slave-a', 2)
  const light = await startWorker(t, master, { name: 'w-light', slave: 'slave-a', slots: 2, kinds: ['linkedin'], env: { LEDGER_MODE: 'light' } })
  await insert(master, { subaccount: { name: 'acme', account: 'acme-inc' } })
  await profile(master, 'li-1', 'linkedin', 'acme')
  await waitRunning(light, ['li-1'])
  const witnessed = await waitFor('a witnessed checkpoint held by the light worker', async () => {
    const state = (await getJson(light, '/v1/status')).sync.light as { witnessed: { size: number, cosigners: number, quorum: number } | null }
    return state.witnessed !== null ? state.witnessed : undefined
  }, { timeoutMs: 60_000, everyMs: 250 })
  t.equal(witnessed.quorum, 2, 'the quorum the network policy names')
  t.ok(witnessed.cosigners >= 2, `cosigned by ${witnessed.cosigners} witnesses`)
  const networks = (await master.ok('blockchain get network bring.count')).text.trim()
  t.equal((await light.ok('blockchain get network bring.count')).text.trim(), networks, `it holds the network's ${networks} network policies, with their proofs`)
  t.equal((await getJson(light, '/v1/status')).sync.light.refused, 0, 'nothing refused')

  // policies come only proven against a witnessed checkpoint: with two of the three witnesses
  // down (quorum 2), a new profile's assignment is not proven, so it does not start
  await Promise.all([witnesses[1].stop(), witnesses[2].stop()])
  const assignments = async (): Promise<number> => (await getJson(master, '/v1/policies?type=assignment')).policies.length
  const before = await assignments()
  await profile(master, 'li-2', 'linkedin', 'acme')
  const head = (await getJson(master, '/v1/ledger/head')) as { seq: number, witnessed: { size: number } }
  await waitFor('the master placed li-2', async () => await assignments() > before ? true : undefined)
  await new Promise(resolve => setTimeout(resolve, 3000))
  t.ok(((await getJson(master, '/v1/ledger/head')).witnessed?.size ?? 0) < head.seq, 'no checkpoint of the new entries is witnessed')
  const rows = await processesOf(light)
  t.same(rows.filter(r => r.state === 'RUNNING').map(r => r.name), ['li-1'], 'li-1 runs on; li-2, not proven against a witnessed checkpoint, does not start')
  // the witnesses come back: the master asks them again, and li-2 is proven and runs
  await Promise.all([startWitness(specs[1]), startWitness(specs[2])])
  await waitRunning(light, ['li-1', 'li-2'])
  t.pass('li-2 runs once a quorum cosigned a checkpoint holding its assignment')
})
