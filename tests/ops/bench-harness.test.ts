import { spawn } from 'node:child_process';
import { request } from 'node:http';
import { judgeGrowth, warmUpCount, type Sample } from '../../scripts/bench/soak-verdict';
import { deliveryKey, programPid, rssBytes, sentSince, startBenchReceiver, type Receiver } from '../../scripts/bench/support';
import { waitUntil } from '../support/wait-until';

// The benchmark's own bookkeeping (npm run bench): the receiver counts a fan-out's
// deliveries per (event, webhook), the soak reads the RSS of the right process and
// judges growth by the rules docs/performance.md states.

const MB = 1024 * 1024;

function sample(i: number, over: Partial<Sample> = {}): Sample {
  return {
    seconds: i * 10, publishing: true, published: i * 2_500, delivered: i * 10_000 - 50, backlog: 50, queued: 40,
    apiRss: 200 * MB, workerRss: 150 * MB, redisUsed: 20 * MB, tables: {}, ...over,
  };
}

/** 60 samples (10 minutes at 10 s): warm-up 12, judged 48. */
const run = (over: (i: number) => Partial<Sample>) => Array.from({ length: 60 }, (_, i) => sample(i, over(i)));

function post(receiver: Receiver, path: string, body: string): Promise<number> {
  const url = new URL(receiver.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method: 'POST', path, headers: { 'content-type': 'application/json', 'webhook-id': 'dlv_x' } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('bench receiver', () => {
  let receiver: Receiver;
  afterEach(() => receiver.close());

  it('counts a fan-out per (event, webhook path) and calls a second callback for the same pair a duplicate', async () => {
    receiver = await startBenchReceiver();
    const body = (id: string) => JSON.stringify({ id, event: 'quota.warning', data: { usage: 1, limit: 2 } });
    for (const hook of [0, 1, 2, 3]) expect(await post(receiver, `/hooks/${hook}`, body('evt_A1'))).toBe(200);
    await post(receiver, '/hooks/2', body('evt_A1'));
    await post(receiver, '/hooks', body('evt_B2'));

    expect(receiver.total).toBe(6);
    expect(receiver.duplicates).toBe(1);
    expect([...receiver.arrivals.keys()].sort()).toEqual([deliveryKey('evt_A1', 0), 'evt_A1/1', 'evt_A1/2', 'evt_A1/3', 'evt_B2'].sort());
    expect(receiver.perHook.get('2')).toBe(2);
    expect(receiver.perHook.get('')).toBe(1);
  });

  it('only counts with { track: false } (no key per delivery kept)', async () => {
    receiver = await startBenchReceiver({ track: false });
    await post(receiver, '/hooks/0', '{"id":"evt_A1"}');
    await post(receiver, '/hooks/0', '{"id":"evt_A1"}');
    expect(receiver.total).toBe(2);
    expect(receiver.arrivals.size).toBe(0);
    expect(receiver.perHook.get('0')).toBe(2);
  });
});

describe('bench paced phase', () => {
  it('measures only what was sent once its settling seconds were over, the boundary included', () => {
    const sent = new Map([['evt_a/0', 1_000], ['evt_b/0', 5_999], ['evt_c/0', 6_000], ['evt_d/0', 9_500]]);
    expect([...sentSince(sent, 6_000).keys()]).toEqual(['evt_c/0', 'evt_d/0']);
    expect(sentSince(sent, 0).size).toBe(4);
    expect(sentSince(sent, 10_000).size).toBe(0);
  });
});

describe('bench process memory', () => {
  it('reads the RSS of a node child itself, and looks through a wrapper to the node process below it', async () => {
    // `; true` keeps the shell from exec'ing node: node runs as the shell's child.
    const child = spawn('/bin/sh', ['-c', `"${process.execPath}" -e "setTimeout(() => {}, 20000)"; true`], { stdio: 'ignore' });
    let pid = child.pid!;
    try {
      pid = await waitUntil(() => {
        const below = programPid(child.pid!);
        return below !== child.pid ? below : undefined;
      }, 'node started below the shell', { timeoutMs: 5_000, intervalMs: 100 });
      expect(pid).not.toBe(child.pid);
      // Read right after its fork, node has not loaded yet (~5 MB); once it has, its own RSS (the shell's stays ~1 MB).
      await waitUntil(() => rssBytes(pid) > 10 * MB, 'the node child\'s RSS read past 10 MB', { timeoutMs: 5_000, intervalMs: 50 });
      expect(rssBytes(child.pid!)).toBeLessThan(10 * MB);
      expect(programPid(process.pid)).toBe(process.pid);
      expect(rssBytes(process.pid)).toBeGreaterThan(10 * MB);
      expect(rssBytes(2 ** 22 + 7)).toBeNaN();
    } finally {
      if (pid !== child.pid) process.kill(pid, 'SIGKILL');
      child.kill('SIGKILL');
    }
  });
});

describe('soak verdict', () => {
  it('counts the first 20% of the samples, or 2 minutes, as warm-up, at most half', () => {
    expect(warmUpCount(100, 10)).toBe(20);
    expect(warmUpCount(30, 10)).toBe(12);
    expect(warmUpCount(10, 10)).toBe(5);
    expect(warmUpCount(10, 2)).toBe(5);
  });

  it('passes a steady run whose RSS and Redis memory saw-tooth within bounds', () => {
    const verdict = judgeGrowth(run((i) => ({ apiRss: (200 + (i % 3) * 8) * MB, workerRss: (150 + (i % 4) * 6) * MB, redisUsed: (20 + (i % 5)) * MB })), 10, 1_000);
    expect(verdict.failures).toEqual([]);
    expect(verdict.lines[0]).toBe('60 samples while publishing; warm-up 12, judged 48');
  });

  it('ignores growth during warm-up', () => {
    const verdict = judgeGrowth(run((i) => ({ workerRss: (i < 12 ? 80 + i * 10 : 200) * MB })), 10, 1_000);
    expect(verdict.failures).toEqual([]);
  });

  it('fails when the worker RSS floor of the last third is more than 10% over the first third\'s', () => {
    const verdict = judgeGrowth(run((i) => ({ workerRss: (150 + i * 0.5) * MB })), 10, 1_000);
    expect(verdict.failures).toHaveLength(1);
    expect(verdict.failures[0]).toMatch(/^worker RSS floor \(lowest sample\) by thirds 156\.0 → 164\.0 → 172\.0 MB \(\+10\.3%, limit \+10%\)$/);
  });

  it('passes a garbage collector\'s wide saw-tooth that ends on a peak (the floor stays), fails a leak under it (the floor rises)', () => {
    // As measured: 260–400 MB all run long, the last samples high.
    const saw = (i: number) => [262, 275, 310, 353, 397, 274][i % 6] + (i >= 57 ? 60 : 0);
    expect(judgeGrowth(run((i) => ({ apiRss: saw(i) * MB })), 10, 1_000).failures).toEqual([]);
    const leaking = judgeGrowth(run((i) => ({ apiRss: (saw(i) + i * 1.5) * MB })), 10, 1_000);
    expect(leaking.failures.join()).toMatch(/^API RSS floor/);
  });

  it('fails when a process is gone (no RSS to read)', () => {
    const verdict = judgeGrowth(run((i) => ({ apiRss: i > 50 ? NaN : 200 * MB })), 10, 1_000);
    expect(verdict.failures.join()).toMatch(/^API RSS/);
  });

  it('fails on Redis memory that keeps rising past 1.5×, not on a level reached during warm-up', () => {
    expect(judgeGrowth(run((i) => ({ redisUsed: (20 + i) * MB })), 10, 1_000).failures.join()).toMatch(/^Redis memory grows without bound/);
    // risen during warm-up, flat after it
    expect(judgeGrowth(run((i) => ({ redisUsed: (i < 12 ? 20 : 45) * MB })), 10, 1_000).failures).toEqual([]);
  });

  it('fails on a backlog that grows past 10 s of deliveries', () => {
    expect(judgeGrowth(run((i) => ({ backlog: i * 400 })), 10, 1_000).failures.join()).toMatch(/^the backlog grows/);
    expect(judgeGrowth(run((i) => ({ backlog: 2_000 + (i % 7) * 500 })), 10, 1_000).failures).toEqual([]);
  });

  it('does not judge growth with fewer than 3 samples after warm-up', () => {
    const verdict = judgeGrowth([sample(0), sample(1), sample(2, { workerRss: 900 * MB })], 10, 1_000);
    expect(verdict.failures).toEqual([]);
    expect(verdict.lines[1]).toMatch(/^growth not judged/);
  });
});
