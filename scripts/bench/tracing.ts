import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { publish } from './http';
import { createStack } from './stack';
import { cpuPerDelivery, readCpu } from './cpu';
import { progress, startBenchReceiver } from './support';
import { createFanOut, fanOut, waitDelivered } from './throughput';

// --scenario tracing: what OpenTelemetry tracing costs (docs/operations.md#tracing).
// The API and a worker run end to end three ways, each on fresh processes: tracing off,
// on with every trace kept (ratio 1.0) and on at ratio 0.01 (parentbased_traceidratio),
// exporting over OTLP/HTTP (--protocol, default http/protobuf) to a sink in this
// process that answers 200 and counts. Prints CPU per delivery (API + worker) for each
// and its ratio to off. Rounds run the three in turn (--rounds, default 2) and each
// setting's figure is the mean: the machine is shared, so only ratios within one run compare.

export type TracingBenchOptions = { events: number; hooks: number; rounds: number; concurrency: number; protocol: string };

const SETTINGS: Array<{ label: string; env: (sink: string, protocol: string) => Record<string, string> }> = [
  { label: 'off', env: () => ({}) },
  { label: 'on, ratio 1.0', env: (sink, protocol) => ({ OTEL_EXPORTER_OTLP_ENDPOINT: sink, OTEL_EXPORTER_OTLP_PROTOCOL: protocol }) },
  {
    label: 'on, ratio 0.01',
    env: (sink, protocol) => ({
      OTEL_EXPORTER_OTLP_ENDPOINT: sink, OTEL_EXPORTER_OTLP_PROTOCOL: protocol, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.01',
    }),
  },
];

export async function runTracing(opts: TracingBenchOptions): Promise<void> {
  const { events: N, hooks: H } = opts;
  const stack = await createStack({ concurrency: opts.concurrency });
  const receiver = await startBenchReceiver();
  let exports = 0;
  let exportedBytes = 0;
  const sink = createServer((req, res) => {
    req.on('data', (c: Buffer) => (exportedBytes += c.length));
    req.on('end', () => {
      exports++;
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', () => r()));
  const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
  const base = { ...stack.env };
  const cpu = new Map<string, number[]>();
  try {
    console.log(`bench tracing: ${N} events × ${H} webhooks per setting, ${opts.rounds} round(s), ${opts.protocol}; database ${stack.dbName}`);
    await stack.startApi();
    const accountId = await createFanOut(stack, receiver, { hooks: H });
    await stack.stopChild(stack.api!);
    let seq = 0;
    for (let round = 0; round < opts.rounds; round++) {
      for (const setting of SETTINGS) {
        stack.env = { ...base, ...setting.env(sinkUrl, opts.protocol) };
        await stack.startApi();
        const worker = stack.spawn('apps/worker/src/main.ts', {}, 'worker');
        const pids = (): Array<[string, number | undefined]> => [['API', stack.api?.pid], ['worker', worker.pid]];
        const warm = await publish(stack.port, stack.token, accountId, 200, 16, `${setting.label}: warm-up`, { firstSeq: seq, deliveries: H });
        seq += 200;
        await waitDelivered(receiver, fanOut(warm, H).keys(), 'warm-up', 120_000);
        const exportsBefore = exports;
        const t0 = performance.now();
        const cpu0 = readCpu(pids());
        const sent = fanOut(await publish(stack.port, stack.token, accountId, N, 64, setting.label, { firstSeq: seq, deliveries: H }), H);
        seq += N;
        const last = await waitDelivered(receiver, sent.keys(), setting.label, 600_000);
        const used = cpuPerDelivery(cpu0, readCpu(pids()), sent.size);
        const perDelivery = used.of('API') + used.of('worker');
        cpu.set(setting.label, [...(cpu.get(setting.label) ?? []), perDelivery]);
        progress('');
        console.log(
          `  round ${round + 1}, ${setting.label}: ${Math.round(sent.size / ((last - t0) / 1000))} deliveries/s; CPU ms per delivery API ${used.of('API').toFixed(3)} + worker ${used.of('worker').toFixed(3)} = ${perDelivery.toFixed(3)}; OTLP exports ${exports - exportsBefore}`,
        );
        await Promise.all([stack.stopChild(stack.api!), stack.stopChild(worker)]);
      }
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const off = mean(cpu.get('off')!);
    console.log('\nCPU per delivery (API + worker), mean over rounds, and against off:');
    for (const { label } of SETTINGS) {
      const m = mean(cpu.get(label)!);
      console.log(`  ${label.padEnd(16)} ${m.toFixed(3)} ms   ×${(m / off).toFixed(2)}`);
    }
    console.log(`  (OTLP sink: ${exports} exports, ${(exportedBytes / 1e6).toFixed(1)} MB in all)`);
  } finally {
    sink.close();
    await receiver.close();
    await stack.close();
  }
}
