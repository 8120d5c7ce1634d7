#!/usr/bin/env node
// The `payrecon` command. Runs the compiled CLI (dist/src/cli/main.js, `npm run build`) when there is a
// build and no source file is newer than it; otherwise (a checkout without a build, or with edits since
// the last one, or PAYRECON_FROM_SOURCE=1) the TypeScript source through tsx. The image ships dist/ only.
'use strict';

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
/** What tsconfig.build.json compiles. */
const SOURCES = ['src', 'workflows', 'activities', 'workers'];

/** Whether any .ts file under `dir` changed after `since` (ms); a missing folder has none. */
function changedSince(dir, since) {
  let entries;
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  return entries.some((entry) => {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) return changedSince(full, since);
    return entry.name.endsWith('.ts') && fs.statSync(full).mtimeMs > since;
  });
}

/** The compiled CLI under `root` when its build is current, else undefined. */
function currentBuild(root) {
  let built;
  try {
    built = fs.statSync(path.join(root, 'dist', '.build-stamp')).mtimeMs;
  } catch {
    return undefined;
  }
  if (SOURCES.some((dir) => changedSince(path.join(root, dir), built))) return undefined;
  return path.join(root, 'dist', 'src', 'cli', 'main.js');
}

if (require.main === module) {
  const built = process.env.PAYRECON_FROM_SOURCE === '1' ? undefined : currentBuild(ROOT);
  if (built) {
    require(built).main();
  } else {
    // tsx's CommonJS loader for require(); its ESM hooks (a loader thread, ~0.1 s) for the import() of a
    // command group, needed only when the command line names one: not for `payrecon --help`.
    require('tsx/cjs');
    if (process.argv.slice(2).some((arg) => !arg.startsWith('-'))) {
      const parentURL = require('node:url').pathToFileURL(__filename);
      require('node:module').register('tsx/esm', { parentURL, data: {} });
    }
    require('../src/cli/main.ts').main();
  }
}

module.exports = { currentBuild };
