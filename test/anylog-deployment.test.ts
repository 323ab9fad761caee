import t from 'tap'
import { join } from 'node:path'
import { startNode } from './helpers/node-process.js'
import { tmpDir } from './helpers/tmp.js'
import { writeAnyLogDeployment } from './helpers/anylog-deployment.js'

// A deployment in AnyLog's shapes (test/helpers/anylog-deployment.ts: set parameters from the
// env, find or declare a config policy, apply it with `config from policy`, whose script
// declares the node's policy unless it is there), sent as `process main.al` over REST to a
// master started from an env file with AnyLog's keys. Run twice, across a restart: nothing is
// declared twice.
const dir = await tmpDir(t, 'lm-deploy-')
const scripts = await writeAnyLogDeployment(dir)

const home = join(dir, 'home')
const env = { NODE_NAME: 'edge-master', COMPANY_NAME: '"New Company"', TCP_BIND: 'false', REST_BIND: 'false', DB_TYPE: 'sqlite', DB_USER: '""', DB_PASSWD: '""', LOCATION: '""', BLOCKCHAIN_SOURCE: 'master', BLOCKCHAIN_SYNC: '30 second', DEPLOY_LOCAL_SCRIPT: 'false', ANYLOG_PATH: dir, LOCAL_SCRIPTS: scripts }

async function deploy (master: Awaited<ReturnType<typeof startNode>>): Promise<void> {
  const reply = await master.command(`process ${join(scripts, 'main.al')}`, { method: 'POST' })
  t.equal(reply.status, 200, reply.text)
  t.match(reply.text, /Config policy [0-9a-f]+ applied: 3 script lines run/, 'the config policy was applied')
  t.match(reply.text, /Scheduler 1 running/, 'its script ran')
  t.match(reply.text, /Process\s+Status/, 'main.al ran to its end')
}

t.test('process main.al declares the config policy and applies it; the node policy stays one', async t => {
  let master = await startNode(t, { type: 'master', name: 'edge-master', home, env })
  const tcpPort = master.tcpPort
  const restPort = master.restPort
  await deploy(master)
  const config = (await master.command('blockchain get config')).json
  t.equal(config.length, 1)
  t.match(config[0].config, { name: 'master-new_company-configs', company: 'New Company', node_type: 'master', ip: '!external_ip', port: '!anylog_server_port.int' })
  t.same(config[0].config.script, ['process !local_scripts/database/deploy_database.al', 'process !local_scripts/policies/node_policy.al', 'run scheduler 1'])
  const masters = (await master.command('blockchain get master')).json
  t.equal(masters.length, 1, 'the start-up declaration is the one AnyLog\'s check finds')
  t.match(masters[0].master, { name: 'edge-master', company: 'New Company', local_ip: '127.0.0.1', port: tcpPort, rest_port: restPort })
  t.equal((await master.command('get node name')).text, `edge-master@127.0.0.1:${tcpPort}`)

  await master.stop()
  master = await startNode(t, { type: 'master', name: 'edge-master', home, tcpPort, restPort, env })
  await deploy(master)
  t.equal((await master.command('blockchain get config bring.count')).text, '1', 'no second config policy')
  t.equal((await master.command('blockchain get master bring.count')).text, '1', 'no second master policy')
  t.equal((await master.command('blockchain get * bring.table [*] [*][name]')).status, 200)
})
