import { execFile } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { freePort } from '../../tests/support/local-services';

// A PostgreSQL cluster of the chaos benchmark's own, which it may stop and
// start: initdb + pg_ctl from the installed binaries, on its own loopback port,
// in a temp folder removed by remove(). initdb refuses to run as root, so as
// root every command runs as the `postgres` user (the folder is handed to it).

const run = promisify(execFile);
const BIN = process.env.CHAOS_PG_BIN ?? '/usr/lib/postgresql/15/bin';
const OS_USER = 'postgres';

export type PrivatePostgres = {
  port: number;
  /** The server's `postgres` database, as a URL (trust authentication on loopback). */
  url: string;
  /** pg_ctl stop -m immediate: the server dies without a checkpoint, as in a crash. */
  crash(): Promise<void>;
  start(): Promise<void>;
  /** Stops it (if running) and deletes its folder. */
  remove(): Promise<void>;
};

async function ownerIds(): Promise<{ uid: number; gid: number } | null> {
  if (process.getuid?.() !== 0) return null;
  const [uid, gid] = await Promise.all([run('id', ['-u', OS_USER]), run('id', ['-g', OS_USER])]);
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

export async function startPrivatePostgres(): Promise<PrivatePostgres> {
  const owner = await ownerIds();
  const dir = mkdtempSync(join(tmpdir(), 'hookline-chaos-pg-'));
  if (owner) chownSync(dir, owner.uid, owner.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  // Run from the folder: the postgres user may not be allowed into the caller's working directory.
  const as = (bin: string, args: string[]) =>
    run(owner ? 'runuser' : join(BIN, bin), owner ? ['-u', OS_USER, '--', join(BIN, bin), ...args] : args, { cwd: dir, timeout: 60_000 });
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=200`;
  const pg: PrivatePostgres = {
    port,
    url: `postgresql://postgres@127.0.0.1:${port}/postgres`,
    async crash() {
      await as('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']);
    },
    async start() {
      await as('pg_ctl', ['start', '-D', data, '-o', options, '-l', join(dir, 'server.log'), '-w', '-t', '60']);
    },
    async remove() {
      await as('pg_ctl', ['stop', '-D', data, '-m', 'immediate', '-w']).catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
  try {
    await as('initdb', ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync']);
    await pg.start();
  } catch (err) {
    await pg.remove();
    throw err;
  }
  return pg;
}
