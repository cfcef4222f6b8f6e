// npx tsx scripts/start-figures.ts — the start time to /readyz and the resident memory of the API
// and the worker, run from TypeScript with tsx (development) and compiled, as the image runs them
// (docs/operations.md#processes).
//
// No Docker engine is needed: the runtime stage's recipe is repeated in a directory (--runtime DIR,
// default a fresh one under the system's temp dir): every workspace's package.json and the lockfile,
// `npm ci --omit=dev --omit=optional` (the Dockerfile's prod-deps stage), each workspace's dist/
// without declarations, the migrations and the dashboard's two assets. Run `npm run build` first.
// Each run starts the process on the database it is given (migrated first) and a queue prefix of its own,
// polls /readyz every 50 ms until it answers 200, then reads its VmRSS after --idle seconds (5) and
// stops it. The four variants take turns (--runs N, default 3), so machine noise falls on all alike.
//
// Options: --runs N (3) --idle S (5) --runtime DIR (assembled unless it holds node_modules)
// Environment: DATABASE_URL (postgresql://postgres@127.0.0.1:5432/test), REDIS_URL (redis://127.0.0.1:6379).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { freePort } from '../tests/support/local-services';
import { performance } from 'node:perf_hooks';
import { createRedis } from '@hookline/queue';

const ROOT = resolve(__dirname, '..');
const args = process.argv.slice(2);
const option = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const RUNS = Number(option('runs') ?? 3);
const IDLE_S = Number(option('idle') ?? 5);
const DATABASE_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
/** One queue prefix for every run (one database), its keys deleted at the end. */
const PREFIX = `startfig-${randomBytes(3).toString('hex')}`;

/** The runtime stage of the Dockerfile, in a directory. */
function assemble(dir: string): void {
  const workspaces = ['apps', 'packages'].flatMap((base) => readdirSync(join(ROOT, base)).map((name) => `${base}/${name}`))
    .filter((ws) => existsSync(join(ROOT, ws, 'package.json')));
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(join(ROOT, 'package-lock.json'), join(dir, 'package-lock.json'));
  for (const ws of workspaces) {
    mkdirSync(join(dir, ws), { recursive: true });
    cpSync(join(ROOT, ws, 'package.json'), join(dir, ws, 'package.json'));
  }
  console.log(`npm ci --omit=dev --omit=optional in ${dir} …`);
  execFileSync('npm', ['ci', '--omit=dev', '--omit=optional', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'ignore' });
  for (const ws of workspaces) {
    if (!existsSync(join(ROOT, ws, 'dist'))) continue;
    cpSync(join(ROOT, ws, 'dist'), join(dir, ws, 'dist'), { recursive: true, filter: (src) => !src.endsWith('.d.ts') && !src.endsWith('.tsbuildinfo') });
  }
  cpSync(join(ROOT, 'prisma/migrations'), join(dir, 'prisma/migrations'), { recursive: true });
  cpSync(join(ROOT, 'prisma/contract'), join(dir, 'prisma/contract'), { recursive: true });
  cpSync(join(ROOT, 'apps/api/src/dashboard/static'), join(dir, 'apps/api/src/dashboard/static'), { recursive: true });
}


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Variant = { label: string; app: 'api' | 'worker'; cwd: string; argv: string[] };
type Figure = { readyMs: number; rssMiB: number };

async function runOnce(v: Variant): Promise<Figure> {
  const port = await freePort();
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    DATABASE_URL,
    REDIS_URL,
    QUEUE_PREFIX: PREFIX,
    PLATFORM_TOKEN: randomBytes(24).toString('hex'),
    ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    ...(v.app === 'api' ? { PORT: String(port) } : { WORKER_HEALTH_PORT: String(port) }),
  };
  const t0 = performance.now();
  const child = spawn(process.execPath, v.argv, { cwd: v.cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  try {
    for (;;) {
      if (child.exitCode !== null) throw new Error(`${v.label} exited ${child.exitCode}: ${stderr}`);
      const status = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.status, () => 0);
      if (status === 200) break;
      if (performance.now() - t0 > 120_000) throw new Error(`${v.label}: no 200 from /readyz in 120 s`);
      await sleep(50);
    }
    const readyMs = performance.now() - t0;
    await sleep(IDLE_S * 1000);
    const rssKb = Number(/^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))![1]);
    return { readyMs, rssMiB: rssKb / 1024 };
  } finally {
    const exited = new Promise((done) => child.once('exit', done));
    child.kill('SIGTERM');
    await exited;
  }
}

async function main(): Promise<void> {
  const given = option('runtime');
  const runtime = given ?? mkdtempSync(join(tmpdir(), 'hookline-runtime-'));
  if (!existsSync(join(runtime, 'node_modules'))) assemble(runtime);
  // The schema first, so no variant pays for migrating (each would otherwise apply pending migrations at start).
  execFileSync(process.execPath, ['packages/db/dist/migrate-cli.js'], { cwd: runtime, env: { PATH: process.env.PATH ?? '', DATABASE_URL }, stdio: 'ignore' });
  const variants: Variant[] = [
    { label: 'API, node --import tsx apps/api/src/main.ts', app: 'api', cwd: ROOT, argv: ['--import', 'tsx', 'apps/api/src/main.ts'] },
    { label: 'API, node apps/api/dist/main.js (runtime)', app: 'api', cwd: runtime, argv: ['apps/api/dist/main.js'] },
    { label: 'worker, node --import tsx apps/worker/src/main.ts', app: 'worker', cwd: ROOT, argv: ['--import', 'tsx', 'apps/worker/src/main.ts'] },
    { label: 'worker, node apps/worker/dist/main.js (runtime)', app: 'worker', cwd: runtime, argv: ['apps/worker/dist/main.js'] },
  ];
  const figures = new Map<string, Figure[]>(variants.map((v) => [v.label, []]));
  for (let run = 1; run <= RUNS; run++) {
    for (const v of variants) {
      const f = await runOnce(v);
      figures.get(v.label)!.push(f);
      console.log(`run ${run}: ${v.label}: /readyz 200 after ${(f.readyMs / 1000).toFixed(2)} s, VmRSS ${f.rssMiB.toFixed(0)} MiB`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  console.log(`\nmedian (min–max) of ${RUNS} runs; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`);
  for (const v of variants) {
    const fs = figures.get(v.label)!;
    const ready = fs.map((f) => f.readyMs / 1000);
    const rss = fs.map((f) => f.rssMiB);
    console.log(`  ${v.label.padEnd(52)} ${median(ready).toFixed(2)} s (${Math.min(...ready).toFixed(2)}–${Math.max(...ready).toFixed(2)})   ${median(rss).toFixed(0)} MiB (${Math.min(...rss).toFixed(0)}–${Math.max(...rss).toFixed(0)})`);
  }
  if (!given) rmSync(runtime, { recursive: true, force: true });
}

async function deleteKeys(): Promise<void> {
  const redis = createRedis(REDIS_URL, 'worker');
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${PREFIX}*`, 'COUNT', 1000);
      if (keys.length) await redis.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

main()
  .catch((err) => {
    console.error(err);
    process.exitCode = 1;
  })
  .finally(() => deleteKeys());
