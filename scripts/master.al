# ledgermesh master start-up script: the steps of AnyLog's master deployment.
# Run by `ledgermesh start` for NODE_TYPE=master, through the same executor as the REPL, and
# for AnyLog's master-operator and master-publisher: a master that declares itself as an
# operator or a publisher (AnyLog's set_params.al maps them so).

# Step 1: set parameters from the env config
node_type = master
if ($NODE_TYPE == master-operator) then node_type = operator
if ($NODE_TYPE == master-publisher) then node_type = publisher
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

# Step 2: the p2p (TCP) server and the REST server
# (bind: true listens on INTERNAL_IP only, false on every interface, or the address given)
run tcp server where external_ip = !external_ip and external_port = !anylog_server_port and internal_ip = !internal_ip and internal_port = !anylog_server_port and bind = !tcp_bind
run rest server where internal_ip = !internal_ip and internal_port = !anylog_rest_port and bind = !rest_bind

# Step 3: the ledger store and its table
# (the password is the env file's DB_PASSWD: it never passes through a variable)
connect dbms !db_name where type = !db_type and ip = !db_ip and port = !db_port and user = !db_user
create table ledger where dbms = !db_name

# Step 4: the scheduler and blockchain sync
run scheduler 1
run blockchain sync where source = master and time = !sync_time and dest = dbms and connection = !ledger_conn

# Step 5: declare the master on the ledger, unless this exact declaration is there already
# (found as AnyLog's node_policy.al looks for it: company, name, local_ip and port)
<new_policy = {"!node_type": {
    "name": !node_name,
    "company": !company_name,
    "hostname": !hostname,
    "ip": !external_ip,
    "local_ip": !internal_ip,
    "port": !tcp_port.int,
    "rest_port": !rest_port.int,
    "peer_id": !peer_id,
    "loc": !loc,
    "country": !country,
    "state": !state,
    "city": !city
}}>
is_declared = blockchain get !node_type where company = !company_name and name = !node_name and local_ip = !internal_ip and port = !tcp_port and rest_port = !rest_port and peer_id = !peer_id bring.count
if (!is_declared == 0) {
    blockchain prepare policy !new_policy
    blockchain insert where policy = !new_policy and local = true and master = !ledger_conn
}

# Step 6: the allocator: places sub-accounts on slaves and profiles on workers, and keeps
# the workers' leases (a worker silent for LEASE_TTL + LEASE_GRACE has its profiles moved)
run allocator
