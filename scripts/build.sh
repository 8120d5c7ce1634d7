#!/usr/bin/env bash
# `npm run build`: the shipped code (workflows/ activities/ workers/ src/, tsconfig.build.json; never tools/
# or test/) compiled to dist/, the workflow bundle prebuilt (dist/workflow-bundle.js, loaded by a worker
# started from dist/ instead of bundling at start) and payrecon's migrations copied beside the code
# (dist/drizzle, read by dist/src/db/migrate.js). Needs the devDependencies (typescript); what it builds
# runs with the production dependencies only.
#
# Builds into a fresh folder and then swaps it in, so a `payrecon` run meanwhile sees the old build or the
# new one, never half of one. dist/.build-stamp is written first: its time is the build's start, and
# bin/payrecon.js uses dist/ only while no source file is newer than it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=$(mktemp -d "$PWD/.dist-build.XXXXXX")
old=
# shellcheck disable=SC2329 # invoked by the EXIT trap
cleanup() { rm -rf "$out" ${old:+"$old"}; }
trap cleanup EXIT

chmod 755 "$out" # mktemp's 0700 would keep an image's unprivileged user out
: >"$out/.build-stamp"
node_modules/.bin/tsc -p tsconfig.build.json --outDir "$out"
node "$out/workers/workflow-bundle.js"
cp -R drizzle "$out/drizzle"

if [[ -e dist ]]; then
  old=$(mktemp -d "$PWD/.dist-old.XXXXXX")
  mv dist "$old/"
fi
mv "$out" dist
echo "built dist/ in ${SECONDS}s: node dist/workers/worker.js, node dist/workers/consumer.js, node dist/src/cli/main.js"
