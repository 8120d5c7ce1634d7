#!/usr/bin/env bash
# A local RabbitMQ cluster of three (or --nodes N) nodes on this machine, from the installed RabbitMQ
# (3.10 on Debian), for trying payrecon against a cluster (README, "Beyond one machine").
#
#   scripts/rabbitmq-cluster.sh start  [--nodes 3] [--base-port 5700] [--fresh]
#   scripts/rabbitmq-cluster.sh stop              stop every node this script started (and only those)
#   scripts/rabbitmq-cluster.sh status            each node: running or not, AMQP URL; exit 3 when one is down
#   scripts/rabbitmq-cluster.sh urls              the AMQP_URL list, comma-separated, one line
#   scripts/rabbitmq-cluster.sh stop-node <n>     stop node n alone (a broker failure, for tests and chaos)
#   scripts/rabbitmq-cluster.sh start-node <n>    start node n again; it rejoins the cluster on its own
#   scripts/rabbitmq-cluster.sh ctl <n> <args>    rabbitmqctl against node n, e.g. ctl 1 list_queues name leader
#
# Node i is payrecon-rmq<i>@localhost, AMQP on 127.0.0.1:<base-port + i> (5701..5703), Erlang distribution
# on <base-port + i + 20000> (25701..). No plugins (so no management or Prometheus port). Everything it
# writes is under .rabbitmq-cluster/ (git-ignored): per node its config, data and logs, and one shared
# Erlang cookie with HOME pointed there. The machine's own broker (rabbit@<host>, 5672, /var/lib/rabbitmq,
# /etc/rabbitmq) is never read, written, stopped or started: its env file and config are bypassed. The
# machine's epmd (4369) is shared, which is what epmd is for. --fresh stops the nodes and wipes their data
# first. Idempotent: start leaves running nodes alone and joins only those not in the cluster yet.
#
# A second cluster beside the first (the chaos run's own, so the cluster test's start --fresh and stop
# do not touch it): RABBITMQ_CLUSTER_DIR (default .rabbitmq-cluster) and RABBITMQ_CLUSTER_NODE_PREFIX
# (default payrecon-rmq: nodes payrecon-rmq<i>@localhost), with its own --base-port.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

STATE_DIR=${RABBITMQ_CLUSTER_DIR:-$ROOT/.rabbitmq-cluster}
NODE_PREFIX=${RABBITMQ_CLUSTER_NODE_PREFIX:-payrecon-rmq}
SETTINGS_FILE=$STATE_DIR/cluster.env
RABBITMQ_BIN=${RABBITMQ_BIN:-/usr/lib/rabbitmq/bin}
START_TIMEOUT=${RABBITMQ_CLUSTER_START_TIMEOUT:-90}

say() { printf 'rabbitmq-cluster: %s\n' "$*"; }
die() {
  printf 'rabbitmq-cluster: ERROR: %s\n' "$*" >&2
  exit 1
}

usage() {
  sed -n '2,24p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit 2
}

[[ $NODE_PREFIX =~ ^[a-z][a-z0-9-]*$ ]] || die "RABBITMQ_CLUSTER_NODE_PREFIX must be lower-case letters, digits and dashes, got '$NODE_PREFIX'"

# --- arguments ---------------------------------------------------------------------------------------
COMMAND=${1:-}
[[ -n $COMMAND ]] || usage
shift
NODES=
BASE_PORT=
FRESH=0
NODE_ARG=
CTL_ARGS=()
case $COMMAND in
stop-node | start-node)
  NODE_ARG=${1:-}
  [[ $NODE_ARG =~ ^[0-9]+$ ]] || die "$COMMAND needs a node number, e.g. $COMMAND 1"
  shift
  ;;
ctl)
  NODE_ARG=${1:-}
  [[ $NODE_ARG =~ ^[0-9]+$ ]] || die "ctl needs a node number and rabbitmqctl arguments, e.g. ctl 1 cluster_status"
  shift
  CTL_ARGS=("$@")
  set --
  ;;
esac
while (($#)); do
  case $1 in
  --nodes)
    NODES=${2:-}
    shift 2 || die "--nodes needs a number"
    ;;
  --base-port)
    BASE_PORT=${2:-}
    shift 2 || die "--base-port needs a number"
    ;;
  --fresh)
    FRESH=1
    shift
    ;;
  -h | --help) usage ;;
  *) die "unknown argument: $1 (see --help)" ;;
  esac
done

# stop/status/... use what start recorded, so they find the nodes start made even without the flags.
if [[ -f $SETTINGS_FILE ]]; then
  # shellcheck source=/dev/null
  . "$SETTINGS_FILE"
  NODES=${NODES:-$RECORDED_NODES}
  BASE_PORT=${BASE_PORT:-$RECORDED_BASE_PORT}
fi
NODES=${NODES:-3}
BASE_PORT=${BASE_PORT:-5700}
[[ $NODES =~ ^[0-9]+$ ]] && ((NODES >= 1 && NODES <= 9)) || die "--nodes must be 1 to 9, got '$NODES'"
[[ $BASE_PORT =~ ^[0-9]+$ ]] && ((BASE_PORT >= 1024 && BASE_PORT + NODES + 20000 <= 65535)) ||
  die "--base-port must be 1024 to $((65535 - 20000 - NODES)), got '$BASE_PORT'"
((BASE_PORT + NODES < 5672 || BASE_PORT + 1 > 5672)) ||
  die "--base-port $BASE_PORT would put a node on 5672, the machine's own broker"
if [[ -n $NODE_ARG ]] && ((NODE_ARG < 1 || NODE_ARG > NODES)); then
  die "node $NODE_ARG does not exist (the cluster has nodes 1 to $NODES)"
fi

node_name() { echo "$NODE_PREFIX$1@localhost"; }
amqp_port() { echo $((BASE_PORT + $1)); }
dist_port() { echo $((BASE_PORT + $1 + 20000)); }
node_dir() { echo "$STATE_DIR/rmq$1"; }
amqp_url() { echo "amqp://guest:guest@127.0.0.1:$(amqp_port "$1")"; }

# --- prerequisites -----------------------------------------------------------------------------------
require_rabbitmq() {
  local tool
  for tool in rabbitmq-server rabbitmqctl; do
    [[ -x $RABBITMQ_BIN/$tool ]] ||
      die "$RABBITMQ_BIN/$tool is missing: install RabbitMQ (Debian: apt-get install rabbitmq-server) or set RABBITMQ_BIN"
  done
  command -v erl >/dev/null 2>&1 || die "erl (Erlang) is not on PATH: install erlang-base (it comes with rabbitmq-server)"
}

# The environment of every server and CLI call for node $1. Set for each call, never exported globally,
# so nothing leaks into the machine's broker's tools. A node that dies (e.g. a CLI call racing the stop that
# removes its HOME) writes its crash dump to /tmp, not into the current folder (the repository).
node_env() {
  local i=$1 dir
  dir=$(node_dir "$i")
  printf '%s\n' \
    "HOME=$STATE_DIR/home" \
    "RABBITMQ_CONF_ENV_FILE=$dir/rabbitmq-env.conf" \
    "RABBITMQ_CONFIG_FILE=$dir/rabbitmq.conf" \
    "RABBITMQ_ADVANCED_CONFIG_FILE=$dir/advanced.config" \
    "RABBITMQ_ENABLED_PLUGINS_FILE=$dir/enabled_plugins" \
    "RABBITMQ_NODENAME=$(node_name "$i")" \
    "RABBITMQ_NODE_IP_ADDRESS=127.0.0.1" \
    "RABBITMQ_NODE_PORT=$(amqp_port "$i")" \
    "RABBITMQ_DIST_PORT=$(dist_port "$i")" \
    "RABBITMQ_MNESIA_BASE=$dir/mnesia" \
    "RABBITMQ_LOG_BASE=$dir/log" \
    "RABBITMQ_PID_FILE=$dir/rabbitmq.pid" \
    "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS=-kernel inet_dist_use_interface {127,0,0,1}" \
    "ERL_EPMD_ADDRESS=127.0.0.1" \
    "ERL_CRASH_DUMP=${TMPDIR:-/tmp}/payrecon-rabbitmq-cluster-erl_crash.dump"
}

with_node_env() {
  local i=$1
  shift
  local vars
  mapfile -t vars < <(node_env "$i")
  env "${vars[@]}" "$@"
}

ctl() {
  local i=$1
  shift
  with_node_env "$i" timeout 120 "$RABBITMQ_BIN/rabbitmqctl" -n "$(node_name "$i")" "$@"
}

# Node $1's own files: config, env file (replacing /etc/rabbitmq/rabbitmq-env.conf), no plugins.
prepare_node() {
  local i=$1 dir
  dir=$(node_dir "$i")
  mkdir -p "$dir/mnesia" "$dir/log"
  cat >"$dir/rabbitmq.conf" <<EOF
# Written by scripts/rabbitmq-cluster.sh for node $(node_name "$i").
listeners.tcp.default = 127.0.0.1:$(amqp_port "$i")
# guest may connect from 127.0.0.1 only (RabbitMQ's default, said here on purpose).
loopback_users.guest = true
# The minority side of a partition pauses instead of diverging (three nodes: one lost node pauses).
cluster_partition_handling = pause_minority
log.file.level = info
log.console = false
EOF
  echo '[].' >"$dir/advanced.config"
  echo '[].' >"$dir/enabled_plugins"
  echo "# empty: the machine's /etc/rabbitmq/rabbitmq-env.conf (NODENAME=rabbit@localhost) must not apply" \
    >"$dir/rabbitmq-env.conf"
}

prepare_state() {
  mkdir -p "$STATE_DIR/home"
  local cookie=$STATE_DIR/home/.erlang.cookie
  if [[ ! -s $cookie ]]; then
    # Our own cookie: the machine's broker does not accept it, so no command here can reach that node.
    (umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' | tr 'a-f' 'A-F' >"$cookie")
  fi
  chmod 400 "$cookie"
  printf 'RECORDED_NODES=%s\nRECORDED_BASE_PORT=%s\n' "$NODES" "$BASE_PORT" >"$SETTINGS_FILE"
}

# The pid of node $1's Erlang VM when it is alive and is that node; empty otherwise.
node_pid() {
  local pid_file pid
  pid_file=$(node_dir "$1")/rabbitmq.pid
  [[ -f $pid_file ]] || return 0
  pid=$(<"$pid_file")
  # The node name is not on the VM's command line but in its environment, which we gave it.
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null &&
    tr '\0' '\n' <"/proc/$pid/environ" 2>/dev/null | grep -qx -- "RABBITMQ_NODENAME=$(node_name "$1")"; then
    echo "$pid"
  fi
}

# Answers when the node's Erlang VM is up (the rabbit app may still be starting or stopped).
node_pings() { ctl "$1" -q -t 10 ping >/dev/null 2>&1; }

# shellcheck disable=SC2016 # $1 expands in the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$1" 2>/dev/null; }

check_ports_free() {
  local i=$1 port
  for port in "$(amqp_port "$i")" "$(dist_port "$i")"; do
    if port_open "$port"; then
      die "port $port (node $(node_name "$i")) is taken by another process (see: ss -ltnp 'sport = :$port'); choose another --base-port"
    fi
  done
}

launch_node() {
  local i=$1 dir
  dir=$(node_dir "$i")
  prepare_node "$i"
  check_ports_free "$i"
  say "starting $(node_name "$i") (AMQP $(amqp_port "$i"), distribution $(dist_port "$i"))"
  rm -f "$dir/rabbitmq.pid"
  # setsid: the node outlives this script and a Ctrl-C in the terminal that ran it.
  with_node_env "$i" setsid "$RABBITMQ_BIN/rabbitmq-server" >>"$dir/log/server.out" 2>&1 </dev/null &
}

await_node() {
  local i=$1 dir
  dir=$(node_dir "$i")
  if ! ctl "$i" -q -t "$START_TIMEOUT" wait --timeout "$START_TIMEOUT" "$dir/rabbitmq.pid" >/dev/null 2>&1 ||
    ! ctl "$i" -q -t "$START_TIMEOUT" await_startup --timeout "$START_TIMEOUT" >/dev/null 2>&1; then
    echo "--- last lines of $dir/log/server.out:" >&2
    tail -n 20 "$dir/log/server.out" >&2 || true
    die "node $(node_name "$i") did not start within ${START_TIMEOUT}s (logs: $dir/log/)"
  fi
}

# Whether node $1 lists node 1 among its cluster's disc nodes.
in_cluster() {
  ctl "$1" -q cluster_status --formatter json 2>/dev/null | grep -q "\"$(node_name 1)\""
}

join_node() {
  local i=$1 seed out
  seed=$(node_name 1)
  in_cluster "$i" && return 0
  say "joining $(node_name "$i") to $seed"
  # The CLI prints the node's boot log lines while it joins (benign warnings on 3.10): kept in a file.
  out=$(node_dir "$i")/log/join.out
  # reset: only a node with no data of its own may join; these nodes are ours and not yet clustered.
  {
    ctl "$i" -q stop_app && ctl "$i" -q reset && ctl "$i" -q join_cluster "$seed" && ctl "$i" -q start_app
  } >>"$out" 2>&1 || {
    tail -n 20 "$out" >&2
    die "$(node_name "$i") could not join $seed (output: $out; logs: $(node_dir "$i")/log/)"
  }
}

running_count() {
  ctl 1 -q cluster_status --formatter json 2>/dev/null |
    node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{try{console.log(JSON.parse(s).running_nodes.length)}catch{console.log(0)}})'
}

await_cluster() {
  local deadline=$((SECONDS + START_TIMEOUT)) running
  while :; do
    running=$(running_count || echo 0)
    ((running == NODES)) && return 0
    ((SECONDS < deadline)) || die "only $running of $NODES nodes are running in the cluster after ${START_TIMEOUT}s (see: $0 ctl 1 cluster_status)"
    sleep 1
  done
}

urls() {
  local i list=()
  for ((i = 1; i <= NODES; i++)); do list+=("$(amqp_url "$i")"); done
  local IFS=,
  echo "${list[*]}"
}

stop_one() {
  local i=$1 pid
  pid=$(node_pid "$i")
  if [[ -z $pid ]] && ! node_pings "$i"; then
    say "$(node_name "$i") is not running"
    return 0
  fi
  say "stopping $(node_name "$i")"
  # stop with the pid file waits until the VM has exited, so the ports are free when it returns.
  ctl "$i" -q stop "$(node_dir "$i")/rabbitmq.pid" >/dev/null 2>&1 || true
  pid=$(node_pid "$i")
  if [[ -n $pid ]]; then
    # Still alive: only this node's own VM, by its pid.
    kill "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 20))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.5; done
  fi
}

# --- commands ----------------------------------------------------------------------------------------
cmd_start() {
  require_rabbitmq
  if ((FRESH)); then
    local i
    for ((i = NODES; i >= 1; i--)); do stop_one "$i"; done
    say "wiping $STATE_DIR"
    rm -rf "$STATE_DIR"
  fi
  prepare_state
  local i started=()
  for ((i = 1; i <= NODES; i++)); do
    if [[ -n $(node_pid "$i") ]] || node_pings "$i"; then
      say "$(node_name "$i") already runs"
    else
      launch_node "$i"
      started+=("$i")
    fi
  done
  # Launched together: a node that was stopped after its peers waits for them to come back.
  for i in "${started[@]}"; do await_node "$i"; done
  for ((i = 2; i <= NODES; i++)); do join_node "$i"; done
  await_cluster
  say "cluster of $NODES nodes running: $(for ((i = 1; i <= NODES; i++)); do printf '%s ' "$(node_name "$i")"; done)"
  say "AMQP_URL=$(urls)"
}

cmd_stop() {
  local i
  # Node 1 last: after a full stop the last node down should be the first up (it has the newest state);
  # start launches all nodes together, so any order works, this one is just the tidy one.
  for ((i = NODES; i >= 1; i--)); do stop_one "$i"; done
}

cmd_status() {
  local i down=0 pid
  for ((i = 1; i <= NODES; i++)); do
    pid=$(node_pid "$i")
    if [[ -n $pid ]] && ctl "$i" -q -t 10 status >/dev/null 2>&1; then
      printf '%-24s running (pid %s)  %s  distribution %s\n' "$(node_name "$i")" "$pid" "$(amqp_url "$i")" "$(dist_port "$i")"
    else
      printf '%-24s stopped             %s\n' "$(node_name "$i")" "$(amqp_url "$i")"
      down=1
    fi
  done
  if ((down == 0)); then
    echo "AMQP_URL=$(urls)"
  else
    return 3
  fi
}

case $COMMAND in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
urls) urls ;;
stop-node) stop_one "$NODE_ARG" ;;
start-node)
  require_rabbitmq
  [[ -f $STATE_DIR/home/.erlang.cookie ]] || die "no cluster under $STATE_DIR yet: run '$0 start' first"
  if [[ -n $(node_pid "$NODE_ARG") ]]; then
    say "$(node_name "$NODE_ARG") already runs"
  else
    launch_node "$NODE_ARG"
    await_node "$NODE_ARG"
  fi
  ;;
ctl) ctl "$NODE_ARG" "${CTL_ARGS[@]}" ;;
*) die "unknown command '$COMMAND' (start, stop, status, urls, stop-node, start-node, ctl)" ;;
esac
