import { request } from 'node:http';
import { countLogLevels, duplicateCauses, duplicatesOf, latencyByAcceptance, latencyOf, lineSplitter, lostKeys, recoverySeconds } from '../../scripts/chaos/measure';
import { startBenchReceiver, type Receiver } from '../../scripts/bench/support';

// The chaos benchmark's arithmetic (npm run chaos, docs/reliability.md "Chaos
// benchmark"): what counts as lost, as a duplicate, the percentiles, and the
// recovery time. The benchmark itself is not a test: no figure is asserted here.

describe('chaos benchmark: lost, duplicates, latency', () => {
  const accepted = new Map([
    ['evt_a/0', 1_000],
    ['evt_a/1', 1_000],
    ['evt_b/0', 2_000],
    ['evt_b/1', 2_000],
  ]);

  it('counts an accepted delivery that never arrived as lost, and nothing else', () => {
    const arrivals = new Map([['evt_a/0', 1_100], ['evt_a/1', 1_200], ['evt_b/1', 2_300], ['evt_other/0', 5]]);
    expect(lostKeys(accepted.keys(), arrivals)).toEqual(['evt_b/0']);
  });

  it('counts each delivery received more than once once, with its share of the accepted', () => {
    // evt_x/0 was never accepted (a refused publish's callback cannot exist, but a stray one must not count).
    expect(duplicatesOf(new Set(['evt_a/0', 'evt_b/1', 'evt_x/0']), accepted)).toEqual({ deliveries: 2, share: 0.5 });
    expect(duplicatesOf(new Set(), new Map())).toEqual({ deliveries: 0, share: 0 });
  });

  it('measures accepted → first successful receipt over the delivered ones only', () => {
    const arrivals = new Map([['evt_a/0', 1_100], ['evt_a/1', 1_200], ['evt_b/0', 2_300]]);
    expect(latencyOf(accepted, arrivals)).toEqual({ p50: 200, p95: 300, p99: 300 });
    expect(latencyOf(accepted, new Map()).p50).toBeNaN();
  });

  it('splits latency by when each delivery was accepted, so a run\'s tail can be traced to its moment', () => {
    const when = new Map([['a', 1_000], ['b', 2_000], ['c', 7_000], ['d', 8_000], ['e', 8_500]]);
    const arrivals = new Map([['a', 1_100], ['b', 2_300], ['c', 17_000], ['d', 8_100]]);
    expect(latencyByAcceptance(when, arrivals, 0)).toEqual([
      { fromSeconds: 0, deliveries: 2, p50: 100, p95: 300, max: 300 },
      // 'e' never arrived: not in its bucket's figures.
      { fromSeconds: 5, deliveries: 2, p50: 100, p95: 10_000, max: 10_000 },
    ]);
  });
});

describe('chaos benchmark: recovery time', () => {
  /** `perSecond[k]` arrivals spread over the k-th second after `from`. */
  const arrivalsAt = (from: number, perSecond: number[]) =>
    perSecond.flatMap((n, k) => Array.from({ length: n }, (_, i) => from + k * 1_000 + (i * 1_000) / Math.max(1, n)));

  it('is the start of the first 1 s bucket after the fault at 90% of the offered rate', () => {
    const faultEnd = 10_000;
    // 90% of 240/s is 216: 215 in a second is not back yet, 216 is.
    const times = [...arrivalsAt(0, Array(10).fill(240)), ...arrivalsAt(faultEnd, [0, 50, 150, 215, 216, 240])];
    expect(recoverySeconds(times, faultEnd, 240, faultEnd + 6_000)).toBe(4);
  });

  it('is 0 when the first second after the fault already runs at the rate, and ignores what came before it', () => {
    expect(recoverySeconds(arrivalsAt(5_000, [240, 240, 240]), 6_000, 240, 8_000)).toBe(0);
  });

  it('is null when the rate is never reached before the end', () => {
    expect(recoverySeconds(arrivalsAt(0, [100, 100, 100]), 0, 240, 3_000)).toBeNull();
    expect(recoverySeconds([], 0, 240, 0)).toBeNull();
  });

  it('counts arrivals at a bucket boundary in the later bucket, and none at the end', () => {
    // 216 arrivals at exactly 1.000 s: bucket 1, not bucket 0; the ones at `until` are out.
    const times = [...Array(216).fill(1_000), ...Array(500).fill(2_000)];
    expect(recoverySeconds(times, 0, 240, 2_000)).toBe(1);
  });
});

describe('chaos benchmark: worker log lines', () => {
  it('counts winston JSON lines by level, split from chunks cut anywhere', () => {
    const lines: string[] = [];
    const feed = lineSplitter((line) => lines.push(line));
    feed('{"level":"warn","message":"Redis connection error"}\n{"level":"er');
    feed('ror","message":"x"}\n{"level":"info","message":"started"}\nplain text\n{"level":"warn"');
    expect(countLogLevels(lines)).toEqual({ error: 1, warn: 1 });
  });
});

describe('chaos benchmark: the receiver', () => {
  let receiver: Receiver;
  afterEach(() => receiver.close());

  const post = (path: string, body: string) =>
    new Promise<number>((resolve, reject) => {
      const url = new URL(receiver.url);
      const req = request({ host: url.hostname, port: url.port, method: 'POST', path }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });

  it('records a delivery only when answered 200, and one received twice as duplicated', async () => {
    receiver = await startBenchReceiver({ delayMs: 5 });
    const body = '{"id":"evt_1","type":"quota.warning"}';
    expect(await post('/hooks/0', body)).toBe(200);
    expect(await post('/hooks/0', body)).toBe(200);
    expect(await post('/hooks/1', body)).toBe(200);
    expect([...receiver.duplicated]).toEqual(['evt_1/0']);
    expect(receiver.duplicates).toBe(1);
    expect(receiver.arrivals.size).toBe(2);
  });

  it('answers 500 to its failing share and does not count those as received', async () => {
    receiver = await startBenchReceiver({ failShare: 0.999999 });
    expect(await post('/hooks/0', '{"id":"evt_2"}')).toBe(500);
    expect(receiver.failed).toBe(1);
    expect(receiver.total).toBe(1);
    expect(receiver.arrivals.size).toBe(0);
  });
});

describe('chaos benchmark: duplicates by cause', () => {
  it('sorts each duplicate by its first copy\'s answer time against the kills and the other faults', () => {
    const arrivals = new Map([
      ['in-flight', 1_030], // answered 30 ms after the kill at 1,000: sent before it
      ['just-before', 960], // answered 40 ms before that kill
      ['before', 500], // 500 ms before it
      ['wipe', 9_500], // no kill near; 500 ms after a fault began at 9,000
      ['quiet', 20_000],
      ['not-duplicated', 1_000],
    ]);
    const causes = duplicateCauses(['in-flight', 'just-before', 'before', 'wipe', 'quiet', 'unknown'], arrivals, [1_000, 30_000], [9_000], { afterMs: 250 });
    expect(causes).toEqual({ inFlightAtKill: 1, answeredJustBeforeKill: 1, answeredBeforeKill: 1, nearOtherFault: 1, other: 1 });
  });
});
