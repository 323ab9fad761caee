# ledgermesh stand-alone start-up script: every role in one node (NODE_TYPE=master,slave,worker),
# as my.saas's stand-alone architecture runs every component on one server. Run by
# `ledgermesh start` when NODE_TYPE lists several roles: the roles' own scripts, in order,
# through the same executor. The servers, the store and blockchain sync start once (the
# commands that start them are idempotent); each role declares its own policy, and the worker
# renews its lease with this node's own allocator, in process. A worker that is also the slave
# is its own slave (SLAVE_NAME defaults to NODE_NAME).

if ($NODE_TYPE contains master) then process !local_scripts/master.al
if ($NODE_TYPE contains slave) then process !local_scripts/slave.al
if ($NODE_TYPE contains worker) then process !local_scripts/worker.al
