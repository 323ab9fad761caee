import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/**
 * A deployment in the shapes of AnyLog's node-deployment scripts, written for the tests (no
 * third-party file is copied): `main.al` sets parameters from the env, then finds or declares
 * the node type's config policy and applies it (`config from policy`). The config's script
 * prepares databases (AnyLog's data layer on an operator and a query node), finds or declares
 * an operator's cluster (`create policy cluster with defaults`), finds or declares the node
 * (`node_policy.al`, whose find sets an operator's `operator_id`) and, on an operator, starts
 * AnyLog's data services (`set buffer threshold`, `run streamer`, `run operator where ...`).
 * Answers the folder to set as LOCAL_SCRIPTS.
 */
export async function writeAnyLogDeployment (root: string): Promise<string> {
  const scripts = join(root, 'deployment-scripts')
  await mkdir(join(scripts, 'policies'), { recursive: true })
  await mkdir(join(scripts, 'database'), { recursive: true })
  for (const [name, text] of Object.entries(FILES)) await writeFile(join(scripts, name), text)
  return scripts
}

const FILES: Record<string, string> = {
  'main.al': `
:set-params:
on error call set-params-error
version = get version
deployment_type = python !version.split(" ")[0]
if !deployment_type != AnyLog then set is_edgelake = true
if !is_edgelake == true and $NODE_TYPE == publisher then edgelake-error
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
`,
  'set_params.al': `
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
set anylog_server_port = $ANYLOG_SERVER_PORT
set anylog_rest_port = $ANYLOG_REST_PORT
ledger_conn = $LEDGER_CONN
if $CLUSTER_NAME then cluster_name = $CLUSTER_NAME
if $DEFAULT_DBMS then default_dbms = $DEFAULT_DBMS
config_name = !node_type.name + - + !company_name.name + -configs
threshold_time = 60 seconds
tcp_bind = false
if $TCP_BIND == true or $TCP_BIND == True or $TCP_BIND == TRUE then tcp_bind = true
set tcp_threads = 6
if !tcp_threads.int < 1 then tcp_threads = 1
end script

:missing-node-type:
print "Missing node type, cannot continue..."
exit scripts
`,
  'policies/config_policy.al': `
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
if !node_type == operator then goto operator-scripts
<set policy new_policy [config][script] = [
    "process !local_scripts/database/deploy_database.al",
    "process !local_scripts/policies/node_policy.al",
    "run scheduler 1"
]>
goto publish-policy

:operator-scripts:
<set policy new_policy [config][script] = [
    "process !local_scripts/database/deploy_database.al",
    "process !local_scripts/policies/cluster_policy.al",
    "process !local_scripts/policies/node_policy.al",
    "run scheduler 1",
    "set buffer threshold where time=!threshold_time and volume=10KB and write_immediate=true",
    "run streamer",
    "if !operator_id then run operator where create_table=true and update_tsd_info=true and master_node=!ledger_conn and policy=!operator_id and threads=3"
]>

:publish-policy:
process !local_scripts/policies/publish_policy.al
if !error_code != 0 then goto declare-policy-error
set create_config = true
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
`,
  'policies/publish_policy.al': `
on error ignore
error_code = 0
on error goto prepare-policy-error
validate_policy = json !new_policy
if not !validate_policy then goto prepare-policy-error
on error goto declare-policy-error
blockchain prepare policy !new_policy
blockchain insert where policy=!new_policy and local=true and master=!ledger_conn
end script

:prepare-policy-error:
error_code = 2
end script

:declare-policy-error:
error_code = 3
`,
  'policies/cluster_policy.al': `
on error ignore
set create_policy = false

:check-policy:
cluster_id = blockchain get cluster where name=!cluster_name and company=!company_name bring.first [*][id]
if !cluster_id then goto end-script
if not !cluster_id and !create_policy == true then goto declare-policy-error

:prep-policy:
new_policy = create policy cluster with defaults where company=!company_name and name=!cluster_name
process !local_scripts/policies/publish_policy.al
if !error_code != 0 then goto declare-policy-error
set create_policy = true
goto check-policy

:end-script:
end script

:declare-policy-error:
print "Failed to declare cluster policy on blockchain"
exit scripts
`,
  'policies/node_policy.al': `
on error ignore
set create_policy = false

:check-policy:
is_policy = blockchain get !node_type where company=!company_name and name=!node_name and local_ip = !ip and port = !anylog_server_port bring.first
if !is_policy then goto node-info
if !create_policy == true then goto declare-policy-error
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
if !node_type == operator and not !cluster_id then goto operator-cluster-error
if !node_type == operator then set policy new_policy [operator][cluster] = !cluster_id
process !local_scripts/policies/publish_policy.al
set create_policy = true
goto check-policy

:node-info:
if !node_type == operator then operator_id = from !is_policy bring [*][id]
end script

:declare-policy-error:
print "Failed to declare !node_type policy on blockchain"
exit scripts

:operator-cluster-error:
print "Missing cluster policy ID for operator node, cannot continue..."
exit scripts
`,
  'database/deploy_database.al': `
on error ignore
if !node_type == operator then process !local_scripts/database/configure_dbms_almgm.al
if !node_type == operator then
do on error goto partition-error
do partition !default_dbms * using insert_timestamp by 14 days
if !node_type == query then connect dbms system_query where type=sqlite and memory=true
end script

:partition-error:
echo "Failed to set partitions"
exit scripts
`,
  'database/configure_dbms_almgm.al': `
on error ignore
connect dbms almgm where type=sqlite
on error goto almgm-table-error
is_table = info table almgm tsd_info exists
if !is_table == false then create table tsd_info where dbms=almgm
end script

:almgm-table-error:
echo "Error: Failed to create table almgm.tsd_info. Cannot continue"
exit scripts
`
}
