#!/usr/bin/env bash
# A highly available PostgreSQL on one machine, from Debian's packages: pg_auto_failover's
# monitor and two data nodes (a primary and a synchronous standby), all on 127.0.0.1. The
# tests and benchmarks start one with it, and it is a starting point for operators trying
# ledgermesh on a cluster (docs/postgresql-ha.md says what to change for real machines).
#
#   pg-cluster.sh start DIR [PORT]   create and run the cluster under DIR; the monitor on PORT,
#                                    the nodes on PORT+1 and PORT+2 (PORT: 46000 by default).
#                                    Prints DB_IP for ledgermesh: 127.0.0.1:P1,127.0.0.1:P2
#   pg-cluster.sh stop DIR           stop every process of the cluster (DIR is left in place)
#   pg-cluster.sh kill DIR NODE      kill -9 every process of node1 or node2 (its keeper, its server)
#   pg-cluster.sh stall DIR NODE     SIGSTOP them (a hung server); `resume DIR NODE` sends SIGCONT
#   pg-cluster.sh run DIR NODE       start a killed node again (it rejoins as a standby)
#   pg-cluster.sh hold-replication DIR NODE  SIGSTOP the node's walsenders (the next kill ends them)
#   pg-cluster.sh postgres DIR NODE  start a killed node's server alone, without its keeper: an
#                                    old primary comes back read-write, as it was (a test's fault)
#   pg-cluster.sh freeze DIR         SIGSTOP every pg_autoctl process (monitor and keepers), the
#                                    servers left running: a test sets the nodes' state by hand
#   pg-cluster.sh primary DIR        which node is primary now (node1 or node2), from the monitor
#   pg-cluster.sh wait DIR           wait until one node is primary and the other a streaming,
#                                    synchronous secondary
#   pg-cluster.sh switchover DIR     a planned switchover (pg_autoctl perform switchover)
#   pg-cluster.sh state DIR          pg_autoctl show state
#
# Failover timings: PG_CLUSTER_TIMINGS=fast (the default here) sets the monitor's health checks
# to fail a node in about 4 s; PG_CLUSTER_TIMINGS=default keeps pg_auto_failover's own (about
# 20 s to fail a primary over). The settings are in fast_timings below.
#
# As root the cluster runs as user postgres (PostgreSQL refuses to run as root). Needs Debian's
# postgresql-<version>-auto-failover and pg-auto-failover-cli (scripts/test-setup.sh installs them).
set -euo pipefail

usage() { sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
[ $# -ge 2 ] || usage
cmd=$1
dir=$(realpath -m "$2")
shift 2

pg_bin() {
  local version
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  echo "/usr/lib/postgresql/$version/bin"
}

# A command as the cluster's owner, with pg_autoctl's config kept under DIR: "${owner[@]}" cmd...
owner=(env PATH="$(pg_bin):$PATH" XDG_CONFIG_HOME="$dir/xdg/config" XDG_DATA_HOME="$dir/xdg/data" XDG_RUNTIME_DIR="$dir/xdg/run" PGCONNECT_TIMEOUT=2)
if [ "$(id -u)" -eq 0 ]; then owner=(runuser -u postgres -- "${owner[@]}"); fi
as_owner() { "${owner[@]}" "$@"; }

port_of() { cat "$dir/$1.port"; }

monitor_uri() { echo "postgres://autoctl_node@127.0.0.1:$(port_of monitor)/pg_auto_failover?sslmode=disable"; }

# Starts `pg_autoctl run` for a node in a session of its own: its process group is the node.
run_node() {
  local name=$1
  setsid "${owner[@]}" pg_autoctl run --pgdata "$dir/$name" >>"$dir/$name.log" 2>&1 </dev/null &
  echo $! >"$dir/$name.pid"
}

# The processes whose working directory is in the cluster's directory: a server's postmaster
# and its children (they outlive a killed postmaster for a moment, and may still write there).
in_cluster_dir() {
  local proc
  for proc in /proc/[0-9]*; do
    case $(readlink "$proc/cwd" 2>/dev/null) in "$dir" | "$dir"/*) echo "${proc#/proc/}" ;; esac
  done
}

# The keeper's process group: the keeper, its supervisor children and the postgres server.
node_group() {
  local pid
  pid=$(cat "$dir/$1.pid" 2>/dev/null) || return 1
  ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' '
}

signal_node() {
  local signal=$1 name=$2 group
  group=$(node_group "$name") || { echo "no $name running under $dir" >&2; return 1; }
  [ -n "$group" ] || { echo "no $name running under $dir" >&2; return 1; }
  kill "-$signal" -- "-$group"
  # a server's backends stay in the group; the postmaster re-parented anywhere is caught too
  if [ "$signal" = KILL ]; then pkill -KILL -f "postgres -D $dir/$name( |$)" 2>/dev/null || true; fi
}

# SIGSTOP the node's walsenders (a test's fault): its standbys get nothing more, and stay
# connected; their pids go to DIR/NODE.held for the kill
hold_replication() {
  local name=$1 proc senders=""
  for proc in /proc/[0-9]*; do
    [ "$(readlink "$proc/cwd" 2>/dev/null)" = "$dir/$name" ] || continue
    grep -q 'walsender' "$proc/cmdline" 2>/dev/null && senders="$senders ${proc#/proc/}"
  done
  [ -n "$senders" ] || { echo "no walsender of $name running under $dir" >&2; return 1; }
  # shellcheck disable=SC2086 # one pid per word
  kill -STOP $senders
  echo "$senders" >>"$dir/$name.held"
}

# SIGSTOP the pg_autoctl processes (comm pg_autoctl) in the groups of the monitor and the nodes
freeze_keepers() {
  local name group pid
  for name in monitor node1 node2; do
    group=$(node_group "$name" 2>/dev/null) || continue
    [ -n "$group" ] || continue
    for pid in $(pgrep -g "$group" || true); do
      [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = pg_autoctl ] && kill -STOP "$pid" 2>/dev/null || true
    done
  done
}

psql_at() {
  local port=$1 db=$2
  shift 2
  as_owner psql -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

# About 4 s from a primary's death to its standby's promotion (see docs/postgresql-ha.md).
fast_timings() {
  local setting
  for setting in health_check_period=1000 health_check_timeout=1000 health_check_retry_delay=500 \
                 health_check_max_retries=1 node_considered_unhealthy_timeout=4000 primary_demote_timeout=5000; do
    psql_at "$(port_of monitor)" pg_auto_failover -c "ALTER SYSTEM SET pgautofailover.${setting%%=*} = ${setting#*=}"
  done
  psql_at "$(port_of monitor)" pg_auto_failover -c 'SELECT pg_reload_conf()' >/dev/null
}

# node1/node2 by what the monitor says each is now (states: a comma list, quoted).
node_in_state() {
  local states=$1
  psql_at "$(port_of monitor)" pg_auto_failover -c \
    "SELECT nodename FROM pgautofailover.node WHERE reportedstate IN ($states) AND goalstate IN ($states) ORDER BY nodeid LIMIT 1" 2>/dev/null
}

# The states in which a node takes writes: alone (single), with a synchronous standby
# (primary), or waiting for one after a failover (wait_primary, join_primary).
PRIMARY_STATES="'single', 'primary', 'wait_primary', 'join_primary'"

wait_ready() {
  local deadline=$((SECONDS + ${PG_CLUSTER_WAIT:-120})) primary secondary sync
  while [ $SECONDS -lt $deadline ]; do
    primary=$(node_in_state "'primary'" || true)
    secondary=$(node_in_state "'secondary'" || true)
    if [ -n "$primary" ] && [ -n "$secondary" ]; then
      sync=$(psql_at "$(port_of "$primary")" postgres -c \
        "SELECT count(*) FROM pg_stat_replication WHERE sync_state IN ('sync', 'quorum') AND state = 'streaming'" 2>/dev/null || true)
      [ "${sync:-0}" -ge 1 ] && return 0
    fi
    sleep 0.5
  done
  echo "the cluster under $dir did not reach a primary with a synchronous standby in ${PG_CLUSTER_WAIT:-120} s" >&2
  as_owner pg_autoctl show state --pgdata "$dir/monitor" >&2 || true
  return 1
}

create_node() {
  local name=$1 port=$2
  echo "$port" >"$dir/$name.port"
  as_owner pg_autoctl create postgres --pgdata "$dir/$name" --pgport "$port" --listen 127.0.0.1 \
    --hostname 127.0.0.1 --name "$name" --auth trust --no-ssl --monitor "$(monitor_uri)" >>"$dir/$name.log" 2>&1
  run_node "$name"
}

case $cmd in
  start)
    base=${1:-46000}
    mkdir -p "$dir/xdg/config" "$dir/xdg/data" "$dir/xdg/run"
    if [ "$(id -u)" -eq 0 ]; then chown -R postgres "$dir"; fi
    echo "$base" >"$dir/monitor.port"
    as_owner pg_autoctl create monitor --pgdata "$dir/monitor" --pgport "$base" --listen 127.0.0.1 \
      --hostname 127.0.0.1 --auth trust --no-ssl >>"$dir/monitor.log" 2>&1
    run_node monitor
    for _ in $(seq 1 100); do psql_at "$base" pg_auto_failover -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
    if [ "${PG_CLUSTER_TIMINGS:-fast}" = fast ]; then fast_timings; fi
    create_node node1 $((base + 1))
    # the servers log outside their data directories (pg_basebackup and pg_rewind copy a data
    # directory's log/ over, and pg_rewind removes the rewound node's own files): one directory
    # for both, each line with its process id (every file begins with the port it listens on)
    mkdir -p "$dir/pglog"; if [ "$(id -u)" -eq 0 ]; then chown postgres "$dir/pglog"; fi
    for _ in $(seq 1 100); do psql_at $((base + 1)) postgres -c 'SELECT 1' >/dev/null 2>&1 && break; sleep 0.2; done
    psql_at $((base + 1)) postgres -c "ALTER SYSTEM SET log_directory = '$dir/pglog'" -c "ALTER SYSTEM SET log_filename = 'postgresql-%Y%m%d-%H%M%S.log'" \
      -c "ALTER SYSTEM SET log_line_prefix = '%m [%p] %q%u@%d %a '" -c 'SELECT pg_reload_conf()' >/dev/null || true
    # the second node clones the first once it is primary
    for _ in $(seq 1 300); do [ -n "$(node_in_state "$PRIMARY_STATES" || true)" ] && break; sleep 0.2; done
    create_node node2 $((base + 2))
    wait_ready
    echo "127.0.0.1:$((base + 1)),127.0.0.1:$((base + 2))"
    ;;
  stop)
    for name in node2 node1 monitor; do
      group=$(node_group "$name" 2>/dev/null || true)
      [ -n "$group" ] && kill -KILL -- "-$group" 2>/dev/null || true
      pkill -KILL -f "pg_autoctl run --pgdata $dir/$name( |$)" 2>/dev/null || true
      pkill -KILL -f "postgres -D $dir/$name( |$)" 2>/dev/null || true
    done
    # SIGKILL lands asynchronously: kill what is left and wait for it (at most 10 s), so that
    # the directory can be removed with nothing writing into it
    for _ in $(seq 1 100); do
      pids=$(in_cluster_dir)
      [ -z "$pids" ] && break
      # shellcheck disable=SC2086 # one pid per word
      kill -KILL $pids 2>/dev/null || true
      sleep 0.1
    done
    ;;
  hold-replication) hold_replication "$1" ;;
  kill)
    # PG_CLUSTER_KILL_REPL_FIRST_MS=N (a test's fault, off by default): replication held N ms
    # before the kill -9 (hold-replication), so that what the node commits meanwhile is flushed
    # on it and never sent: a primary that dies holding a WAL tail its standby never got
    if [ -n "${PG_CLUSTER_KILL_REPL_FIRST_MS:-}" ]; then
      hold_replication "$1" || true
      sleep "$(awk "BEGIN { print ${PG_CLUSTER_KILL_REPL_FIRST_MS} / 1000 }")"
    fi
    signal_node KILL "$1"
    # held walsenders are in sessions of their own: killed too, or the server could not start again
    if [ -f "$dir/$1.held" ]; then
      # shellcheck disable=SC2046 # one pid per word
      kill -KILL $(cat "$dir/$1.held") 2>/dev/null || true
      rm -f "$dir/$1.held"
    fi
    ;;
  freeze) freeze_keepers ;;
  stall) signal_node STOP "$1" ;;
  resume) signal_node CONT "$1" ;;
  run) run_node "$1" ;;
  postgres) as_owner pg_ctl --pgdata "$dir/$1" --log "$dir/$1.postgres.log" -o "-p $(port_of "$1") -h 127.0.0.1" start >/dev/null ;;
  primary) node_in_state "$PRIMARY_STATES" ;;
  wait) wait_ready ;;
  switchover) as_owner pg_autoctl perform switchover --pgdata "$dir/node1" >>"$dir/monitor.log" 2>&1 ;;
  state) as_owner pg_autoctl show state --pgdata "$dir/monitor" ;;
  *) usage ;;
esac
