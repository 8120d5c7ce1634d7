#!/usr/bin/env bash
# Completes package-lock.json with the other platforms' optional packages (Biome, Rollup, SWC binaries for
# macOS, Windows, musl, ...) when the registry npm resolved against does not serve them: npm then leaves
# them out of the lock, and `npm ci` everywhere (the Dockerfile, a user's machine, a complete registry
# too) refuses the lock as out of sync. Each missing package gets an entry with its exact version (the
# parent pins it), its platform (os, cpu, libc from its name) and `optional`, but no integrity: npm skips
# it on other platforms without fetching it, and on its own platform fetches that version by name.
# test/build.test.ts fails while an entry is missing. Run after any `npm install` that changed the lock.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

node - package-lock.json <<'NODE'
const fs = require('node:fs');

const file = process.argv[2];
const lock = JSON.parse(fs.readFileSync(file, 'utf8'));
const OS = ['aix', 'android', 'darwin', 'freebsd', 'linux', 'netbsd', 'openbsd', 'openharmony', 'sunos', 'win32'];
const CPU = ['arm', 'arm64', 'ia32', 'loong64', 'mips64el', 'ppc64', 'riscv64', 's390x', 'x64'];

/** os, cpu and libc from a name such as @swc/core-linux-x64-musl or @rollup/rollup-win32-arm64-msvc. */
function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const at = parts.findIndex((part) => OS.includes(part));
  const os = parts[at];
  const cpu = parts[at + 1];
  if (at < 0 || !CPU.includes(cpu)) throw new Error(`cannot tell the platform of ${name}`);
  const rest = parts.slice(at + 2);
  const libc = os !== 'linux' ? undefined : rest.some((part) => part.startsWith('musl')) ? 'musl' : rest.includes('gnu') ? 'glibc' : undefined;
  return { os, cpu, libc };
}

/** Where node would find `dep` from the package at `key`: its own node_modules, then each parent's. */
function resolves(key, dep) {
  for (let at = key; ; ) {
    if (lock.packages[`${at}/node_modules/${dep}`]) return true;
    const up = at.lastIndexOf('/node_modules/');
    if (up < 0) return Boolean(lock.packages[`node_modules/${dep}`]);
    at = at.slice(0, up);
  }
}

const added = [];
for (const [key, entry] of Object.entries(lock.packages)) {
  if (!key.startsWith('node_modules/')) continue;
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    if (resolves(key, dep)) continue;
    if (!/^\d+\.\d+\.\d+(-[\w.]+)?$/.test(version)) throw new Error(`${key} wants ${dep}@${version}, not an exact version`);
    const { os, cpu, libc } = platformOf(dep);
    lock.packages[`node_modules/${dep}`] = {
      version,
      cpu: [cpu],
      ...(entry.dev ? { dev: true } : {}),
      ...(libc ? { libc: [libc] } : {}),
      optional: true,
      os: [os],
    };
    added.push(`${dep}@${version}`);
  }
}
const [root, ...rest] = Object.entries(lock.packages);
rest.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
lock.packages = Object.fromEntries([root, ...rest]);
fs.writeFileSync(file, `${JSON.stringify(lock, null, 2)}\n`);
console.log(added.length ? `package-lock.json: added ${added.length} entries: ${added.join(', ')}` : 'package-lock.json is complete');
NODE
