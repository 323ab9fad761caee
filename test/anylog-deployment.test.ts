import t from 'tap'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { startNode } from './helpers/node-process.js'
import { tmpDir } from './helpers/tmp.js'

// A deployment in AnyLog's style, written for this test (the shape of AnyLog's node-deployment
// scripts: set parameters from the env, find or declare a config policy, apply it with
// `config from policy`, whose script declares the node's policy unless it is there), sent as
// `process main.al` over REST to a master started from an env file with AnyLog's keys. Run twice,
// across a restart: nothing is declared twice.
const dir = await tmpDir(t, 'lm-deploy-')
const scripts = join(dir, 'deployment')
await mkdir(join(scripts, 'policies'), { recursive: true })

await writeFile(join(scripts, 'main.al'), `
:set-params:
on error call set-params-error
version = get version
deployment_type = python !version.split(" ")[0]
if !deployment_type != AnyLog then set is_edgelake = true
create work directories
if $LOCAL_SCRIPTS then set local_scripts = $LOCAL_SCRIPTS
process !local_scripts/set_params.al

:set-configs:
on error ignore
process !local_scripts/policies/config_policy.al

:end-script:
get processes
end script

:set-params-error:
echo "Failed to set parameters"
return
`)

await writeFile(join(scripts, 'set_params.al'), `
on error ignore
company_name = "New Company"
hostname = get hostname
if not $NODE_TYPE then goto missing-node-type
else set node_type = $NODE_TYPE
if $NODE_NAME then node_name = $NODE_NAME
else node_name = !hostname + " " + !node_type
set node name !node_name
if $COMPANY_NAME then company_name = $COMPANY_NAME
if $LOCATION then loc = $LOCATION
if not !loc then loc = 0.0, 0.0
if not !country then country = Unknown
config_name = !node_type.name + - + !company_name.name + -configs
set anylog_server_port = $ANYLOG_SERVER_PORT
set anylog_rest_port = $ANYLOG_REST_PORT
tcp_bind = false
if $TCP_BIND == true or $TCP_BIND == True or $TCP_BIND == TRUE then tcp_bind = true
set tcp_threads = 6
if !tcp_threads.int < 1 then tcp_threads = 1
end script

:missing-node-type:
print "Missing node type, cannot continue..."
exit scripts
`)

await writeFile(join(scripts, 'policies', 'config_policy.al'), `
on error ignore
set create_config = false

:check-policy:
config_id = blockchain get config where company=!company_name and name=!config_name and node_type=!node_type bring.first [*][id]
if !config_id then goto config-policy
if not !config_id and !create_config == true then goto declare-policy-error

:prepare-new-policy:
new_policy = ""
set policy new_policy [config] = {}
set policy new_policy [config][name] = !config_name
set policy new_policy [config][company] = !company_name
set policy new_policy [config][node_type] = !node_type
set policy new_policy [config][ip] = '!external_ip'
if !tcp_bind == true then set policy new_policy [config][ip] = '!ip'
set policy new_policy [config][port] = '!anylog_server_port.int'
set policy new_policy [config][rest_port] = '!anylog_rest_port.int'
if !node_type == master then
<do set policy new_policy [config][script] = [
    "process !local_scripts/policies/node_policy.al",
    "run scheduler 1"
]>

:publish-policy:
validate_policy = json !new_policy
if not !validate_policy then goto declare-policy-error
blockchain prepare policy !new_policy
blockchain insert where policy=!new_policy and local=true and master=!ledger_conn
set create_config = true
blockchain reload metadata
goto check-policy

:config-policy:
on error goto config-policy-error
config from policy where id = !config_id
end script

:declare-policy-error:
print "Failed to declare config policy on blockchain"
end script

:config-policy-error:
print "Failed to execute config policy"
`)

await writeFile(join(scripts, 'policies', 'node_policy.al'), `
on error ignore
is_policy = blockchain get !node_type where company=!company_name and name=!node_name and local_ip = !ip and port = !anylog_server_port bring.first
if !is_policy then goto end-script

set new_policy = ""
set policy new_policy [!node_type] = {}
set policy new_policy [!node_type][name] = !node_name
set policy new_policy [!node_type][company] = !company_name
set policy new_policy [!node_type][hostname] = !hostname
set policy new_policy [!node_type][ip] = !external_ip
set policy new_policy [!node_type][local_ip] = !ip
set policy new_policy [!node_type][port] = !anylog_server_port.int
set policy new_policy [!node_type][rest_port] = !anylog_rest_port.int
set policy new_policy [!node_type][loc] = !loc
set policy new_policy [!node_type][country] = !country
blockchain prepare policy !new_policy
blockchain insert where policy=!new_policy and local=true and master=!ledger_conn

:end-script:
end script
`)

const home = join(dir, 'home')
const env = { NODE_NAME: 'edge-master', COMPANY_NAME: '"New Company"', TCP_BIND: 'false', REST_BIND: 'false', DB_TYPE: 'sqlite', DB_USER: '""', DB_PASSWD: '""', LOCATION: '""', BLOCKCHAIN_SOURCE: 'master', BLOCKCHAIN_SYNC: '30 second', DEPLOY_LOCAL_SCRIPT: 'false', ANYLOG_PATH: dir, LOCAL_SCRIPTS: scripts }

async function deploy (master: Awaited<ReturnType<typeof startNode>>): Promise<void> {
  const reply = await master.command(`process ${join(scripts, 'main.al')}`, { method: 'POST' })
  t.equal(reply.status, 200, reply.text)
  t.match(reply.text, /Config policy [0-9a-f]+ applied: 2 script lines run/, 'the config policy was applied')
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
  t.same(config[0].config.script, ['process !local_scripts/policies/node_policy.al', 'run scheduler 1'])
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
