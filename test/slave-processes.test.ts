import t from 'tap'
import { waitFor } from './helpers/net.js'
import { insert, startMaster, startSlave } from './helpers/fleet.js'
import { KINDS, logged, runLog, slaveProcesses, subaccountOn } from './helpers/slave-runs.js'

// Slaves run processes per sub-account (ingest, plan, ...), supervised as workers supervise
// profiles, under a lease of their own: real master, slaves and workers on 127.0.0.1. A slave
// drained and one killed -9, their sub-accounts moving: test/slave-faults.test.ts (npm run
// test:faults). Nothing here asserts a duration.

t.test('a slave runs every declared process for each of its sub-accounts; a crashing one restarts with backoff', async t => {
  const { command, beats } = await runLog(t)
  const master = await startMaster(t)
  const slave = await startSlave(t, master, 'slave-a', 5, { kinds: KINDS, command })
  const acme = await insert(master, { subaccount: { name: 'acme', account: 'acme-inc', settings: { heartbeat_ms: 150, region: 'eu' } } })
  await insert(master, { subaccount: { name: 'crashy', account: 'crashy-inc', settings: { heartbeat_ms: 150, crash_after_ms: 200 } } })

  await waitFor('acme\'s three processes running on slave-a', async () => {
    const rows = (await slaveProcesses(slave)).filter(r => r.name === 'acme' && r.state === 'RUNNING')
    return rows.length === KINDS.length ? rows : undefined
  }, { timeoutMs: 40_000 })
  const recorded = await waitFor('acme\'s processes to record heartbeats', () => {
    const mine = beats().filter(b => b.subaccount === 'acme')
    return KINDS.every(k => mine.some(b => b.kind === k)) ? mine : undefined
  })
  t.same([...new Set(recorded.map(b => b.kind))].sort(), KINDS, 'one process per declared kind')
  t.ok(recorded.every(b => b.slave === 'slave-a' && b.subaccount_id === acme.id), 'each got SLAVE_NAME and SUBACCOUNT_ID (the sub-account policy\'s id)')
  // the runner's output reaches the slave's log through a pipe: it may come after its first heartbeat
  t.ok(await logged(slave, /"stream":"stdout".*ingest of sub-account acme started on slave-a .*region\W+eu/), 'its output (settings from SUBACCOUNT_SETTINGS) is in the slave\'s log')

  const crashed = await waitFor('crashy\'s processes to have restarted twice', async () => {
    const rows = (await slaveProcesses(slave)).filter(r => r.name === 'crashy')
    return rows.length === KINDS.length && rows.every(r => r.restarts >= 2) ? rows : undefined
  }, { timeoutMs: 40_000 })
  t.ok(crashed.every(r => r.last_exit === 'exit code 3'), 'the exits are recorded')
  t.ok(await logged(slave, /"msg":"sub-account crashy plan ERROR"/), 'each state change is logged with the sub-account and kind')

  const view = (await slave.ok('get profiles')).text
  t.match(view, /Slave slave-a: 6 sub-account processes, lease valid/, 'get profiles on the slave: its processes and its lease')
  t.match(view, /acme\s*\|ingest\s*\|RUNNING\s*\|\d+\s*\|0\s/, 'state, pid and restarts per process')
  const metrics = await (await fetch(`${slave.url}/metrics`)).text()
  t.match(metrics, /ledgermesh_subaccount_processes\{[^}]*state="RUNNING"[^}]*\} [1-9]/, '/metrics counts the slave\'s processes by state')
  t.match(metrics, /ledgermesh_subaccount_process_restarts\{[^}]*\} [1-9]/, 'and their restarts')
  const where = await waitFor('the master to show acme on slave-a', async () => { const s = await subaccountOn(master, 'acme'); return s?.slave === 'slave-a' ? s : undefined })
  t.match(where, { lease: 'live', status: 'assigned' }, 'get profiles on the master: where the sub-account runs, and its slave\'s lease')
  t.match((await master.ok('get profiles')).text, /acme\s*\|slave-a\s*\|live/, 'in the text table too')
  const masterMetrics = await (await fetch(`${master.url}/metrics`)).text()
  t.match(masterMetrics, /ledgermesh_slave_leases\{[^}]*state="live"[^}]*\} 1/, 'the master counts slave leases')
})
