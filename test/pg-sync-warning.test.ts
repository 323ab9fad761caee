import t from 'tap'
import { createTestDatabase } from './helpers/pg.js'
import { masterEnv } from './helpers/masters.js'
import { getJson } from './helpers/fleet.js'
import { startNode } from './helpers/node-process.js'
import { waitFor } from './helpers/net.js'
import { launchBrowser } from './helpers/browser.js'

// A master on a PostgreSQL without a synchronous standby (the test server is a single one): an
// insert it acknowledges is on that one server only. It says so at start-up, in `get status`
// and in /health (and /v1/network), and with LEDGER_REQUIRE_SYNC=true it refuses to start.

t.test('no synchronous standby: the master warns in its log, its status and its health', async t => {
  const db = await createTestDatabase(t)
  const master = await startNode(t, { type: 'master', name: 'm-warn', env: masterEnv(db) })
  t.ok(master.stderr.concat(master.stdout).some(line => line.includes('PostgreSQL has no synchronous standby') && line.includes('LEDGER_REQUIRE_SYNC')), 'a start-up warning naming what is missing and the setting that refuses instead')

  const status = await getJson(master, '/v1/status')
  t.same(status.database.hosts, [`${db.host}:${db.port}`], 'status: the hosts')
  t.equal(status.database.primary, `${db.host}:${db.port}`, 'status: the primary written to')
  t.equal(status.database.require_sync, false)
  t.match(status.database.replication, { synchronous_standbys: 0, standbys: [], problem: /no synchronous standby: synchronous_standby_names is empty \(no standby is connected\)/ }, 'status: the replication the primary reports, and the problem')
  t.same(status.database.failovers, [])

  const health = await getJson(master, '/health')
  t.equal(health.status, 'ok', 'healthy: it serves')
  t.match(health.warnings, [/^PostgreSQL: no synchronous standby/], 'health: the warning')
  const network = await getJson(master, '/v1/network')
  t.equal(network.database.primary, `${db.host}:${db.port}`, '/v1/network shows the database too')

  const text = (await master.command('get status')).text
  t.match(text, /no synchronous standby/, '`get status` as text shows it')

  // the web console shows the database beside the network
  const browser = await launchBrowser(t)
  const page = await browser.newPage()
  await page.goto(`${master.url}/ui`)
  const primary = page.locator('#database [data-field="db-primary"]')
  await primary.waitFor({ timeout: 30_000 })
  t.equal(await primary.textContent(), `${db.host}:${db.port}`, 'the console: the primary')
  t.match(await page.locator('#database [data-field="db-replication"]').textContent(), /^0 · no synchronous standby/, 'the console: no synchronous standby, and why')
})

t.test('LEDGER_REQUIRE_SYNC=true without a synchronous standby: the master refuses to start, saying why', async t => {
  const db = await createTestDatabase(t)
  const master = await startNode(t, { type: 'master', name: 'm-refuse', env: masterEnv(db, { LEDGER_REQUIRE_SYNC: 'true' }), noWait: true })
  const code = await waitFor('the master to exit', () => master.exitCode, { timeoutMs: 30_000 })
  t.not(code, 0, 'it exits with a failure')
  t.match(master.logs(), /LEDGER_REQUIRE_SYNC=true and postgres:\/\/.* cannot confirm a commit on a second server: no synchronous standby/, 'the reason names the setting, the database and what is missing')
})
