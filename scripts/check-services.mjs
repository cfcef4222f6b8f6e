// Before `npm test`: the suite needs the machine's PostgreSQL and Redis. Start
// whichever is installed but not running; otherwise say in one line what to install.
import { execSync, spawnSync } from 'node:child_process';
import { connect } from 'node:net';
import pg from 'pg';

const pgUrl = new URL(process.env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres');
const redisUrl = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');

const answers = (host, port) =>
  new Promise((resolve) => {
    const socket = connect({ host, port: Number(port) });
    socket.setTimeout(1000);
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
    socket.once('timeout', () => (socket.destroy(), resolve(false)));
  });

async function waitFor(host, port, seconds) {
  for (let i = 0; i < seconds * 4; i++) {
    if (await answers(host, port)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}

const has = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;
const fail = (line) => {
  console.error(`hookline tests: ${line}`);
  process.exit(1);
};

// Debian's clusters (pg_lsclusters: version, name, port, …) that listen on `port`.
function clustersOnPort(port) {
  if (!has('pg_lsclusters')) return [];
  const lines = spawnSync('pg_lsclusters', ['-h'], { encoding: 'utf8' }).stdout ?? '';
  return lines
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .filter(([version, name, clusterPort]) => version && name && clusterPort === String(port));
}

async function ensurePostgres() {
  const host = pgUrl.hostname.replace(/^\[|\]$/g, '');
  const port = pgUrl.port || '5432';
  if (!(await answers(host, port))) {
    for (const [version, name] of clustersOnPort(port)) {
      console.log(`hookline tests: starting PostgreSQL ${version}/${name} (pg_ctlcluster)…`);
      try {
        execSync(`pg_ctlcluster --skip-systemctl-redirect ${version} ${name} start`, { stdio: 'ignore' });
      } catch {
        /* reported below */
      }
    }
    if (!(await waitFor(host, port, 20))) {
      fail(`PostgreSQL is not answering at ${host}:${port}; install and start it (Debian: apt-get install postgresql) or set TEST_DATABASE_URL`);
    }
  }
  // Answering is not enough: the tests log in as this URL's user to create their databases.
  const client = new pg.Client({ connectionString: pgUrl.toString(), connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
  } catch (err) {
    const who = `${decodeURIComponent(pgUrl.username || 'postgres')}@${host}:${port}`;
    const noPassword = !pgUrl.password && /password/i.test(String(err?.message));
    fail(
      noPassword
        ? `PostgreSQL asks ${who} for a password (a fresh Debian install uses scram-sha-256 over TCP); set TEST_DATABASE_URL=postgresql://USER:PASSWORD@${host}:${port}/postgres, or run .ci/run as root, which sets one`
        : `cannot log in to PostgreSQL as ${who}: ${err?.message ?? err}; set TEST_DATABASE_URL`,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ensureRedis() {
  const host = redisUrl.hostname;
  const port = redisUrl.port || '6379';
  if (await answers(host, port)) return;
  if (has('redis-server')) {
    console.log('hookline tests: starting redis-server…');
    spawnSync('redis-server', ['--daemonize', 'yes', '--bind', '127.0.0.1', '--port', port, '--save', '', '--appendonly', 'no'], { stdio: 'ignore' });
    if (await waitFor(host, port, 10)) return;
  }
  fail(`Redis is not answering at ${host}:${port}; install it (Debian: apt-get install redis-server) or set TEST_REDIS_URL`);
}

await ensurePostgres();
await ensureRedis();
