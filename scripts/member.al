# ledgermesh member start-up script: AnyLog's deployment steps for a node that keeps a replica.
# Run by `ledgermesh start`, through the same executor as the REPL, for NODE_TYPE=member and
# for AnyLog's operator, query, publisher and generic nodes: each declares a policy of its own
# type, as AnyLog's node_policy.al does.

# Step 1: set parameters from the env config
node_type = $NODE_TYPE
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

# Step 3: the local replica of the ledger (always the embedded store on a member)
connect dbms !db_name where type = level
create table ledger where dbms = !db_name

# Step 4: the scheduler and blockchain sync
run scheduler 1
run blockchain sync where source = !blockchain_source and time = !sync_time and dest = dbms and connection = !ledger_conn

# Step 5 (AnyLog operators): an operator belongs to the cluster its env names (CLUSTER_NAME):
# find the company's cluster of that name, or declare it as AnyLog's cluster_policy.al does
cluster_name = $CLUSTER_NAME
member = $MEMBER
if (!node_type == operator and !cluster_name) {
    cluster_id = blockchain get cluster where name = !cluster_name and company = !company_name bring.first [*][id]
    if (not !cluster_id) {
        new_cluster = create policy cluster with defaults where company = !company_name and name = !cluster_name
        blockchain prepare policy !new_cluster
        blockchain insert where policy = !new_cluster and local = true and master = !ledger_conn
        cluster_id = blockchain get cluster where name = !cluster_name and company = !company_name bring.first [*][id]
    }
}

# Step 6: declare the node ({"member": ...}, {"operator": ...}, ...), unless this exact
# declaration is there already (found as AnyLog's node_policy.al looks for it: company, name,
# local_ip and port)
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
# an operator's cluster, member number (MEMBER) and whether it is its cluster's first (main)
if (!node_type == operator and !cluster_id) {
    set policy new_policy [operator][cluster] = !cluster_id
    if !member then set policy new_policy [operator][member] = !member.int
    in_cluster = blockchain get operator where cluster = !cluster_id bring.count
    is_main = false
    if !in_cluster == 0 then is_main = true
    set policy new_policy [operator][main] = !is_main.bool
}
is_declared = blockchain get !node_type where company = !company_name and name = !node_name and local_ip = !internal_ip and port = !tcp_port and rest_port = !rest_port and peer_id = !peer_id bring.count
if (!is_declared == 0) {
    blockchain prepare policy !new_policy
    blockchain insert where policy = !new_policy and local = true and master = !ledger_conn
}
