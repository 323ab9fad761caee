# ledgermesh slave start-up script: AnyLog's deployment steps for a node that keeps a replica.
# Run by `ledgermesh start` for NODE_TYPE=slave, through the same executor as the REPL.

# Step 1: set parameters from the env config
node_name = $NODE_NAME
company_name = $COMPANY_NAME
internal_ip = $INTERNAL_IP
external_ip = $EXTERNAL_IP
anylog_server_port = $ANYLOG_SERVER_PORT
anylog_rest_port = $ANYLOG_REST_PORT
tcp_bind = $TCP_BIND
rest_bind = $REST_BIND
ledger_conn = $LEDGER_CONN
db_type = $DB_TYPE
db_ip = $DB_IP
db_port = $DB_PORT
db_user = $DB_USER
db_passwd = $DB_PASSWD
db_name = $DB_NAME
sync_time = $BLOCKCHAIN_SYNC
blockchain_source = $BLOCKCHAIN_SOURCE
loc = $LOC
country = $COUNTRY
state = $STATE
city = $CITY
slots = $SLOTS

# Step 2: the p2p (TCP) server and the REST server
# (bind: true listens on INTERNAL_IP only, false on every interface, or the address given)
run tcp server where external_ip = !external_ip and external_port = !anylog_server_port and internal_ip = !internal_ip and internal_port = !anylog_server_port and bind = !tcp_bind
run rest server where internal_ip = !internal_ip and internal_port = !anylog_rest_port and bind = !rest_bind

# Step 3: the local replica of the ledger (always the embedded store on a slave)
connect dbms !db_name where type = level
create table ledger where dbms = !db_name

# Step 4: the scheduler and blockchain sync
run scheduler 1
run blockchain sync where source = !blockchain_source and time = !sync_time and dest = dbms and connection = !ledger_conn

# Step 5: declare the slave on the ledger, unless this exact declaration is there already
<new_policy = {"slave": {
    "name": !node_name,
    "company": !company_name,
    "hostname": !hostname,
    "ip": !external_ip,
    "local_ip": !internal_ip,
    "port": !tcp_port.int,
    "rest_port": !rest_port.int,
    "peer_id": !peer_id,
    "slots": !slots.int,
    "loc": !loc,
    "country": !country,
    "state": !state,
    "city": !city
}}>
is_declared = blockchain get slave where company = !company_name and name = !node_name and local_ip = !internal_ip and port = !tcp_port and rest_port = !rest_port and peer_id = !peer_id and slots = !slots bring.count
if (!is_declared == 0) {
    blockchain prepare policy !new_policy
    blockchain insert where policy = !new_policy and local = true and master = !ledger_conn
}

# Step 6: the operator: renews this slave's lease with the master (every slave must: only
# slaves with a live lease host sub-accounts) and runs, for each sub-account the ledger assigns
# to this slave, one supervised process per SUBACCOUNT_PROCESSES kind (SUBACCOUNT_RUNNER_<KIND>)
run operator
