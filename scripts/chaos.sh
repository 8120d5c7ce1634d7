#!/usr/bin/env bash
# `npm run chaos`: sets everything up, starts a Temporal dev server unless one runs, then runs the chaos batch
# (tools/chaos/main.ts): orders under notification faults, worker and consumer SIGKILLs and a RabbitMQ restart,
# followed by the invariant checks. Arguments go to tools/chaos/main.ts: npm run chaos -- --orders 300 --seed 7
# Exit code: 0 every invariant holds, 1 a violation, 2 bad arguments.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# A developer machine: the public development secret is allowed unless one is set.
export PAYRECON_ENV=${PAYRECON_ENV:-development}

bash scripts/setup.sh
bash scripts/temporal-dev.sh start
echo "==> chaos (the Temporal dev server keeps running afterwards: npm run temporal:stop stops it)"
exec node_modules/.bin/tsx tools/chaos/main.ts "$@"
