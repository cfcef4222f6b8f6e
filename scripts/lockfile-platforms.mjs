// Run after any `npm install` that changes package-lock.json.
//
// This machine's npm registry serves only the Linux builds of packages that ship
// one prebuilt binary package per platform (@swc/core-*, @unrs/resolver-binding-*,
// @msgpackr-extract/*). `npm install` then leaves the other platforms out of the
// lock file, and `npm ci` refuses the lock ("Missing: … from lock file"). This adds
// an entry for each missing platform package, with its os/cpu, so `npm ci` sees the
// tree complete and skips those packages as incompatible without fetching them.
import { readFileSync, writeFileSync } from 'node:fs';

const lockPath = 'package-lock.json';
const lock = JSON.parse(readFileSync(lockPath, 'utf8'));
const packages = lock.packages;

const CPUS = ['x64', 'arm64', 'arm', 'ia32', 'ppc64', 's390x', 'riscv64', 'loong64', 'wasm32'];
const OSES = ['darwin', 'linux', 'win32', 'freebsd', 'android', 'openharmony', 'sunos', 'netbsd', 'openbsd', 'aix'];

function platformOf(name) {
  const parts = name.split('/').pop().split('-');
  const os = parts.find((p) => OSES.includes(p));
  const cpu = parts.find((p) => CPUS.includes(p));
  const libc = parts.some((p) => p.startsWith('musl')) ? 'musl' : parts.some((p) => p.startsWith('gnu')) ? 'glibc' : undefined;
  return { os, cpu, libc };
}

let added = 0;
for (const [path, entry] of Object.entries(packages)) {
  for (const [dep, version] of Object.entries(entry.optionalDependencies ?? {})) {
    const base = path ? `${path}/node_modules/${dep}` : `node_modules/${dep}`;
    if (packages[base] || packages[`node_modules/${dep}`]) continue;
    const { os, cpu, libc } = platformOf(dep);
    if (!os || !cpu) continue; // not a per-platform binary package: leave it to npm
    packages[`node_modules/${dep}`] = {
      version,
      ...(cpu === 'wasm32' ? {} : { cpu: [cpu] }),
      ...(entry.dev ? { dev: true } : {}),
      ...(libc ? { libc: [libc] } : {}),
      optional: true,
      os: [os],
    };
    added++;
  }
}
const sorted = Object.fromEntries(Object.entries(packages).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
lock.packages = sorted;
writeFileSync(lockPath, JSON.stringify(lock, null, 2) + '\n');
console.log(`lockfile-platforms: added ${added} platform package entr${added === 1 ? 'y' : 'ies'}`);
