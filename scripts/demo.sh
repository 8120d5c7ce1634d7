#!/usr/bin/env bash
# The README's first command (`npm run demo`): sets everything up, starts a Temporal dev server unless one
# runs, then the service (payment simulator, worker, consumer) and a demo batch of orders.
# Arguments go to tools/demo.ts: npm run demo -- --orders 200 --exit
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# A developer machine: the public development secret is allowed unless one is set.
export PAYRECON_ENV=${PAYRECON_ENV:-development}

bash scripts/setup.sh
bash scripts/temporal-dev.sh start
echo "==> demo (the Temporal dev server keeps running afterwards: npm run temporal:stop stops it)"
exec node_modules/.bin/tsx tools/demo.ts "$@"
