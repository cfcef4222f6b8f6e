// The ceiling the delivery pipeline is compared against: a bare BullMQ worker
// that signs (both schemes) and POSTs each job with the worker's own sender to
// the benchmark's receiver, with no database at all. Run by scripts/bench.ts.
import { performance } from 'node:perf_hooks';
import { Queue, Worker } from 'bullmq';
import { generateSigningSecret, signatureHeaders } from '@hookline/domain';
import { createRedis, redisTargetFromEnv } from '@hookline/queue';
import { createSender } from '../../apps/worker/src/sender';

async function main() {
  const n = Number(process.env.BENCH_N);
  const concurrency = Number(process.env.BENCH_CONCURRENCY ?? 200);
  const target = redisTargetFromEnv(process.env);
  // On a cluster every key of the queue must hash to one slot.
  const prefix = target.kind === 'cluster' ? `{${process.env.BENCH_PREFIX!}}` : process.env.BENCH_PREFIX!;
  const url = process.env.BENCH_RECEIVER_URL!;
  const producer = createRedis(target, 'worker');
  const queue = new Queue('ceiling', { connection: producer, prefix });
  for (let i = 0; i < n; i += 1000) {
    await queue.addBulk(
      Array.from({ length: Math.min(1000, n - i) }, (_, k) => ({ name: 'deliver', data: { seq: i + k }, opts: { removeOnComplete: true } })),
    );
  }
  const secret = generateSigningSecret();
  const sender = createSender({ timeoutMs: 10_000, allowPrivateTargets: true, userAgent: 'Hookline/bench' });
  let done = 0;
  let started = 0;
  // This process's CPU time (all threads) from the first job to the last: per delivery, the worker's to compare with.
  let cpuAtStart = process.cpuUsage();
  let finish: () => void;
  const finished = new Promise<void>((resolve) => (finish = resolve));
  const connection = createRedis(target, 'worker');
  const worker = new Worker(
    'ceiling',
    async (job) => {
      if (started === 0) {
        started = performance.now();
        cpuAtStart = process.cpuUsage();
      }
      const body = JSON.stringify({ id: `evt_ceiling${job.data.seq}`, event: 'quota.warning', created_at: new Date().toISOString(), test: false, data: { seq: job.data.seq } });
      const headers = {
        'Content-Type': 'application/json',
        'X-PerfectParser-Event': 'quota.warning',
        'X-PerfectParser-Delivery': `dlv_${job.id}`,
        ...signatureHeaders({ brand: 'PerfectParser', secrets: [secret], deliveryId: `dlv_${job.id}`, timestampSeconds: Math.floor(Date.now() / 1000), body }),
      };
      const result = await sender.send({ url, headers, body });
      if (!result.ok) throw new Error(`ceiling send failed: ${result.error ?? result.status}`);
      if (++done === n) finish();
    },
    { connection, prefix, concurrency },
  );
  await finished;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuAtStart);
  process.stdout.write(`${JSON.stringify({ n, seconds, rate: n / seconds, cpuMs: (cpu.user + cpu.system) / 1000 })}\n`);
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  sender.close();
  producer.disconnect();
  connection.disconnect();
}

main().catch((err: Error) => {
  process.stderr.write(`ceiling: ${err.message}\n`);
  process.exit(1);
});
