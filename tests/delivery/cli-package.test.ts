import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createHttpServer, listenHubOf } from '@hookline/api';
import { verify } from '@hookline/verify';
import { waitUntil } from '../support/wait-until';
import { deliveryReaches, eventually, startStack, type Stack } from './stack';

// The `hookline` command as an integrator installs it: the package compiled
// with its own build config, packed (its `files` and `bin` as shipped),
// installed with npm into a fresh project in a temp directory, and run from
// node_modules/.bin against a running Hookline. Nothing is written into the
// repository. Its one dependency (ws) comes from npm's cache, or the registry.

const ROOT = resolve(__dirname, '../..');
const PACKAGE = resolve(ROOT, 'packages/cli');
const exec = promisify(execFile);

let stack: Stack;
let server: Server;
let tmp: string;
let bin: string;

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'hookline-cli-'));
  const staged = join(tmp, 'package');
  await exec(resolve(ROOT, 'node_modules/.bin/tsc'), ['-p', join(PACKAGE, 'tsconfig.build.json'), '--outDir', join(staged, 'dist'), '--tsBuildInfoFile', join(tmp, 'tsbuildinfo')], { cwd: PACKAGE });
  await mkdir(join(staged, 'bin'));
  await copyFile(join(PACKAGE, 'bin/hookline.cjs'), join(staged, 'bin/hookline.cjs'));
  await copyFile(join(PACKAGE, 'package.json'), join(staged, 'package.json'));
  await copyFile(join(PACKAGE, 'README.md'), join(staged, 'README.md'));
  // Scripts off (prepack would build into the repository); no npm_* variables of an enclosing npm.
  const env = Object.fromEntries(Object.entries(process.env).filter(([name]) => !/^npm_/i.test(name)));
  await exec('npm', ['pack', staged, '--pack-destination', tmp, '--ignore-scripts', '--silent'], { cwd: tmp, env });
  const tarball = (await readdir(tmp)).find((f) => f.endsWith('.tgz'));
  if (!tarball) throw new Error('npm pack made no tarball');
  const project = join(tmp, 'integrator');
  await mkdir(project);
  await writeFile(join(project, 'package.json'), JSON.stringify({ name: 'integrator', private: true }));
  await exec('npm', ['install', '--prefix', project, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts', join(tmp, tarball)], { cwd: project, env });
  bin = join(project, 'node_modules/.bin/hookline');

  stack = await startStack();
  server = createHttpServer(stack.api.app);
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
});
afterAll(async () => {
  if (server) {
    await listenHubOf(stack.api.app)?.close();
    server.closeAllConnections();
    await new Promise((done) => server.close(done));
  }
  await stack?.close();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

it('installed from npm pack, `hookline listen` forwards a published callback, verifiable, and its exit ends the session', async () => {
  const local = await stack.receiver({ status: 204 });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const child = spawn(bin, ['listen', '--forward-to', local.url, '--events', 'quota.exceeded', '--url', url, '--api-key', stack.account.key], {
    stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? tmp },
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  try {
    const secret = (await waitUntil(() => /Signing secret: (whsec_\S+)/.exec(output), 'the signing secret printed', { timeoutMs: 20_000 }))[1];
    await eventually(async () => (await stack.v1.get('/v1/listen/sessions')).body.data[0]?.connected === true, 15_000, 'the tool connected');

    await stack.publish('quota.exceeded', { usage: 120, limit: 100 }, 1);
    const [cb] = await local.waitFor(1);
    expect(verify(cb.body, cb.headers as Record<string, string>, secret)).toMatchObject({ event: 'quota.exceeded', data: { usage: 120 } });
    const deliveryId = String(cb.headers['x-perfectparser-delivery']);
    const { attempts } = await deliveryReaches(stack, deliveryId, 'succeeded');
    expect(attempts[0]).toMatchObject({ response_status: 204 });
    await waitUntil(() => output.includes(deliveryId), 'the tool printed the callback');

    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect((await stack.v1.get('/v1/listen/sessions')).body.data).toEqual([]);
  } finally {
    child.kill('SIGKILL');
  }
});
