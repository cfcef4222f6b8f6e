// `npm run bench -- --soak`: does anything grow without bound under a steady load?
//
// The API and ONE worker run as separate processes (as in production) on a fresh
// database and queue prefix. One account has --hooks H webhooks on the bench
// receiver; events are published at a steady --rate (events/s, each a fan-out to
// H deliveries), with an Idempotency-Key on every publish unless --idempotency off,
// until ⌈--deliveries / H⌉ events are published (after 20 warm-up events, whose
// deliveries prove the worker is consuming); then the run waits for every callback. Every --interval seconds it samples and prints: deliveries received and
// the backlog (deliveries accepted but not yet received; and jobs waiting, active or
// delayed in the queue), the RSS of the API and of the worker (VmRSS of the node
// process running each program, from /proc), Redis used_memory, and the total size
// (with indexes and TOAST) of the events, deliveries, attempts and
// idempotency_records tables. The tables grow with the data by design (retention is
// not part of this run); they are printed, not judged.
//
// The verdict uses the samples taken while publishing. Warm-up: the first 20% of
// them, or the first 2 minutes if that is longer, at most half. On the rest:
//   - RSS: the floor (lowest sample) of the last third may exceed the floor of the
//     first third by at most 10%, for the API and for the worker (RSS saws with the
//     garbage collector; a leak raises the floor, a collection does not);
//   - Redis used_memory grows without bound if the mean of the last third is over
//     1.5× the mean of the first third AND the thirds' means rise monotonically;
//   - the backlog is unbounded if its last-third mean exceeds 10 s of deliveries at
//     the target rate AND 1.5× its first-third mean;
//   - the publisher held at least 95% of the target rate;
//   - at the end every delivery arrived exactly once and every deliveries row
//     is `succeeded`.
// With fewer than 3 samples after warm-up the growth rules are reported as not judged.
import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { createDeliveryQueue, createRedis } from '@hookline/queue';
import { publishOne } from './http';
import { createStack, REDIS_URL } from './stack';
import { commandLine, programPid, progress, rssBytes, sleep, startBenchReceiver } from './support';
import { createFanOut } from './throughput';
import { fmt, judgeGrowth, mb, type Sample } from './soak-verdict';

export type SoakOptions = {
  deliveries: number;
  rate: number;
  hooks: number;
  idempotency: boolean;
  intervalSeconds: number;
  concurrency: number;
  maxInFlight?: number;
};

const TABLES = ['events', 'deliveries', 'attempts', 'idempotency_records'] as const;
const PUBLISH_IN_FLIGHT = 256;
const WARMUP_EVENTS = 20;
const MIN_RATE_SHARE = 0.95;
/** ANALYZE's period where autovacuum is off (autovacuum's own naptime is 60 s). */
const ANALYZE_EVERY_MS = 60_000;

const COLUMNS = ['time s', 'published', 'delivered', 'deliv/s', 'backlog', 'queued', 'API RSS MB', 'worker RSS MB', 'Redis MB', ...TABLES.map((t) => `${t} MB`)];

function row(cells: string[]): string {
  return cells.map((c, i) => c.padStart(Math.max(COLUMNS[i].length, 9))).join('  ');
}

export async function runSoak(opts: SoakOptions): Promise<void> {
  const H = opts.hooks;
  const events = Math.ceil(opts.deliveries / H);
  const expected = events * H;
  const deliveryRate = opts.rate * H;
  const stack = await createStack({
    concurrency: opts.concurrency, env: { MAX_WEBHOOKS_PER_ACCOUNT: String(Math.max(100, H)) }, reasons: { MAX_WEBHOOKS_PER_ACCOUNT: 'room for --hooks webhooks on one account' },
  });
  const receiver = await startBenchReceiver({ track: false });
  const redis = createRedis(REDIS_URL, 'worker');
  const queue = createDeliveryQueue(redis, stack.prefix);
  const db = new Client({ connectionString: stack.env.DATABASE_URL });
  let sampling = true;
  let analyzer: NodeJS.Timeout | undefined;
  try {
    console.log(
      `soak: ${fmt(events)} events × ${H} webhooks = ${fmt(expected)} deliveries at ${fmt(opts.rate)} events/s (${fmt(deliveryRate)} deliveries/s, ` +
        `about ${Math.ceil(events / opts.rate / 60)} min), Idempotency-Key ${opts.idempotency ? 'on every publish' : 'off'}; worker concurrency ${opts.concurrency}, ` +
        `max_in_flight ${opts.maxInFlight ?? 'default'}; sample every ${opts.intervalSeconds} s; database ${stack.dbName}, queue prefix ${stack.prefix}`,
    );
    await stack.startApi();
    await db.connect();
    // A server without autovacuum never re-plans what it cached while the tables were
    // small (docs/operations.md, Data retention): the soak would measure that, not the service.
    const { rows: [av] } = await db.query<{ autovacuum: string }>('SHOW autovacuum');
    if (av.autovacuum !== 'on') {
      console.log(`soak: this PostgreSQL runs with autovacuum = ${av.autovacuum}; the soak runs ANALYZE on its database every ${ANALYZE_EVERY_MS / 1000} s, as autovacuum would`);
      analyzer = setInterval(() => void db.query('ANALYZE').catch(() => undefined), ANALYZE_EVERY_MS);
    }
    const accountId = await createFanOut(stack, receiver, opts);
    const worker = stack.spawn('apps/worker/src/main.ts', {}, 'worker');
    const apiPid = programPid(stack.api!.pid!);
    const workerPid = programPid(worker.pid!);
    console.log(`soak: API pid ${apiPid} (${commandLine(apiPid)})`);
    console.log(`soak: worker pid ${workerPid} (${commandLine(workerPid)})`);

    // Not timed: a few events delivered prove the worker is consuming before the clock starts.
    for (let i = 0; i < WARMUP_EVENTS; i++) await publishOne(stack.port, stack.token, accountId, -1 - i, { idempotency: opts.idempotency, deliveries: H });
    const warmDeadline = performance.now() + 120_000;
    while (receiver.total < WARMUP_EVENTS * H) {
      if (performance.now() > warmDeadline) throw new Error('the worker delivered no warm-up callbacks within 120 s');
      await sleep(100);
    }
    const warmUp = receiver.total;
    const received = () => receiver.total - warmUp;

    let published = 0;
    let publishing = true;
    const started = performance.now();
    const samples: Sample[] = [];
    let lastDelivered = 0;
    const sample = async (): Promise<Sample> => {
      const [info, counts, sizes] = await Promise.all([
        redis.info('memory'),
        queue.getJobCounts('waiting', 'prioritized', 'active', 'delayed'),
        // A partitioned table's bytes are its partitions' (it has none of its own; a plain table has no partition tree).
        db.query<{ relname: string; bytes: string }>(
          `SELECT c.relname, (pg_total_relation_size(c.oid) + COALESCE((SELECT sum(pg_total_relation_size(p.relid)) FROM pg_partition_tree(c.oid) p WHERE p.isleaf), 0))::bigint AS bytes
             FROM pg_class c WHERE c.relkind IN ('r', 'p') AND c.relname = ANY($1) AND NOT c.relispartition`,
          [TABLES],
        ),
      ]);
      const delivered = received();
      return {
        seconds: (performance.now() - started) / 1000,
        publishing,
        published,
        delivered,
        backlog: published * H - delivered,
        queued: Object.values(counts).reduce((a, b) => a + b, 0),
        apiRss: rssBytes(apiPid),
        workerRss: rssBytes(workerPid),
        redisUsed: Number(/^used_memory:(\d+)/m.exec(info)?.[1] ?? NaN),
        tables: Object.fromEntries(sizes.rows.map((r) => [r.relname, Number(r.bytes)])),
      };
    };
    const print = (s: Sample) => {
      const rate = (s.delivered - lastDelivered) / opts.intervalSeconds;
      lastDelivered = s.delivered;
      progress('');
      console.log(
        row([
          s.seconds.toFixed(0), fmt(s.published), fmt(s.delivered), fmt(rate), fmt(s.backlog), fmt(s.queued),
          mb(s.apiRss), mb(s.workerRss), mb(s.redisUsed), ...TABLES.map((t) => mb(s.tables[t] ?? NaN)),
        ]),
      );
    };
    console.log(row(COLUMNS));
    const state: { failure: Error | null } = { failure: null };
    // A function, not the field: the field is set from callbacks the compiler's narrowing does not see.
    const failed = (): Error | null => state.failure;
    const sampler = (async () => {
      let next = started + opts.intervalSeconds * 1000;
      while (sampling) {
        await sleep(Math.max(0, next - performance.now()));
        next += opts.intervalSeconds * 1000;
        if (!sampling) break;
        const s = await sample();
        samples.push(s);
        print(s);
      }
    })().catch((err: Error) => {
      if (sampling) state.failure ??= new Error(`sampling failed: ${err.message}`);
    });

    // The publisher: steady, at most PUBLISH_IN_FLIGHT requests outstanding (it falls behind if the API cannot keep up).
    let inFlight = 0;
    const publishStart = performance.now();
    const every = Math.max(1, Math.round(opts.rate));
    for (let i = 0; i < events && !state.failure; i++) {
      const due = publishStart + (i * 1000) / opts.rate;
      const wait = due - performance.now();
      if (wait > 1) await sleep(wait);
      while (inFlight >= PUBLISH_IN_FLIGHT && !state.failure) await sleep(1);
      inFlight++;
      publishOne(stack.port, stack.token, accountId, i, { idempotency: opts.idempotency, deliveries: H }).then(
        () => {
          inFlight--;
          published++;
        },
        (err: Error) => {
          inFlight--;
          state.failure ??= err;
        },
      );
      if (i % every === 0) progress(`soak: ${fmt(i)}/${fmt(events)} events published, ${fmt(received())} deliveries received`);
    }
    while (inFlight > 0) await sleep(10);
    const publishFailure = failed();
    if (publishFailure) throw publishFailure;
    const publishSeconds = (performance.now() - publishStart) / 1000;
    publishing = false;

    // Every callback, then one last sample.
    const drainDeadline = performance.now() + Math.max(300_000, (expected / deliveryRate) * 1000);
    while (received() < expected && performance.now() < drainDeadline && !failed()) {
      await sleep(200);
      progress(`soak: published; ${fmt(received())}/${fmt(expected)} deliveries received`);
    }
    await sleep(500);
    sampling = false;
    await sampler;
    const samplingFailure = failed();
    if (samplingFailure) throw samplingFailure;
    const final = await sample();
    samples.push(final);
    print(final);

    // The verdict.
    const failures: string[] = [];
    const lines: string[] = [];
    const growth = judgeGrowth(samples.filter((s) => s.publishing), opts.intervalSeconds, deliveryRate);
    lines.push(growth.lines[0]);

    const heldRate = events / publishSeconds;
    const rateLine = `publisher held ${fmt(heldRate)} events/s (${fmt(heldRate * H)} deliveries/s) of ${fmt(opts.rate)} targeted`;
    lines.push(rateLine);
    if (heldRate < opts.rate * MIN_RATE_SHARE) failures.push(`${rateLine}: under ${MIN_RATE_SHARE * 100}%, the API could not take the rate`);

    const statuses = await db.query<{ status: string; n: string }>(`SELECT status, count(*)::bigint AS n FROM deliveries GROUP BY status ORDER BY status`);
    const statusLine = statuses.rows.map((r) => `${r.status} ${fmt(Number(r.n))}`).join(', ');
    const succeeded = Number(statuses.rows.find((r) => r.status === 'succeeded')?.n ?? 0);
    const rows = expected + warmUp;
    lines.push(`callbacks received ${fmt(received())} of ${fmt(expected)} (and ${fmt(warmUp)} of the warm-up); deliveries rows: ${statusLine}`);
    if (received() !== expected) failures.push(`${fmt(received())} callbacks received for ${fmt(expected)} deliveries${received() > expected ? ' (duplicates)' : ' (some never arrived)'}`);
    if (succeeded !== rows) failures.push(`${fmt(succeeded)} deliveries rows succeeded of ${fmt(rows)} (${statusLine})`);

    lines.push(...growth.lines.slice(1));
    failures.push(...growth.failures);
    lines.push(`tables at the end: ${TABLES.map((t) => `${t} ${mb(final.tables[t] ?? NaN)} MB`).join(', ')}`);
    // At a steady rate, with autovacuum reclaiming dead versions as it goes (as a long-running installation's day
    // partition is): the history's bytes per delivery (these tables with their indexes and partitions, over every row).
    const historyBytes = TABLES.reduce((sum, t) => sum + (final.tables[t] ?? 0), 0);
    lines.push(`history at a steady rate: ${fmt(historyBytes / rows)} bytes per delivery (${TABLES.map((t) => `${t} ${fmt((final.tables[t] ?? 0) / rows)}`).join(', ')})`);

    console.log('\nsoak results');
    for (const line of lines) console.log(`  ${line}`);
    if (failures.length) throw new Error(`soak failed: ${failures.join('; ')}`);
    console.log('soak: passed');
  } finally {
    sampling = false;
    clearInterval(analyzer);
    await queue.close().catch(() => undefined);
    redis.disconnect();
    await db.end().catch(() => undefined);
    await stack.close();
    await receiver.close();
  }
}
