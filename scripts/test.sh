#!/usr/bin/env bash
# The one command that sets everything up and runs every check and test (`npm test`, also CI's .ci/run):
# scripts/setup.sh, a Temporal dev server (started here and stopped at exit unless one already runs),
# then typecheck, lint and vitest against the test database, RabbitMQ prefix and task queue.
# Arguments go to vitest: npm test -- test/some.test.ts -t 'a name'
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/payrecon_test}

bash scripts/setup.sh

# --- Temporal dev server -----------------------------------------------------------------------------
# A TEMPORAL_ADDRESS pointing elsewhere means the caller brings their own server.
export TEMPORAL_PORT=${TEMPORAL_PORT:-7233}
export TEMPORAL_ADDRESS=${TEMPORAL_ADDRESS:-127.0.0.1:$TEMPORAL_PORT}
stop_temporal=0
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() {
  local rc=$?
  if ((stop_temporal)); then
    bash scripts/temporal-dev.sh stop || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [[ $TEMPORAL_ADDRESS == "127.0.0.1:$TEMPORAL_PORT" || $TEMPORAL_ADDRESS == "localhost:$TEMPORAL_PORT" ]]; then
  if ! bash scripts/temporal-dev.sh status >/dev/null; then
    stop_temporal=1
  fi
  # Starts one when none runs; either way waits until healthy and checks the search attributes.
  bash scripts/temporal-dev.sh start
else
  echo "==> using the Temporal server at $TEMPORAL_ADDRESS"
fi

# --- test environment --------------------------------------------------------------------------------
export DATABASE_URL=$TEST_DATABASE_URL
export PAYRECON_ENV=development
export AMQP_PREFIX=payrecon-test
export TEMPORAL_TASK_QUEUE=payrecon-test
export TEMPORAL_TEST_SERVER_PATH=$ROOT/.venv/bin/temporal-test-server

echo "==> typecheck"
npm run --silent typecheck
echo "==> lint"
npm run --silent lint
echo "==> tests"
rc=0
npx vitest run "$@" || rc=$?
exit "$rc"
