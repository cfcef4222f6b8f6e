import { performance } from 'node:perf_hooks';
import { Client } from 'pg';
import { deliveryKey, percentile, type Receiver } from './support';

/**
 * Where the paced phase's latency goes, per delivery, from the times the
 * pipeline stored and the bench's own clock (both this machine's):
 *   API:      sent → the event's `created_at`, which the API sets between its two
 *             statements (request, validation, the wait for a batch, the match);
 *   queue:    that → the first attempt's start (`attempts.created_at − duration_ms`):
 *             the write and its commit, enqueue, the job's wait, the worker's load and slot;
 *   callback: the attempt's start → the receiver has the whole request.
 * The attempt's times have millisecond precision; p50 and p99 of each part
 * (they do not add up to the whole's).
 */
export async function latencyBreakdown(databaseUrl: string, sent: Map<string, number>, receiver: Receiver): Promise<string> {
  const eventIds = [...new Set([...sent.keys()].map((key) => key.split('/')[0]))];
  const client = new Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ event_id: string; url: string; stored: Date; recorded: Date; duration_ms: number }>(
      `SELECT a.event_id, w.url, e.created_at AS stored, a.created_at AS recorded, a.duration_ms
         FROM attempts a JOIN events e ON e.id = a.event_id JOIN webhooks w ON w.id = a.webhook_id
        WHERE a.event_id = ANY($1::text[]) AND a.attempt_number = 1`,
      [eventIds],
    );
    const parts = { api: [] as number[], queue: [] as number[], callback: [] as number[] };
    for (const row of rows) {
      const key = deliveryKey(row.event_id, row.url.slice(row.url.lastIndexOf('/') + 1));
      const sentAt = sent.get(key);
      const arrived = receiver.arrivals.get(key);
      if (sentAt === undefined || arrived === undefined) continue;
      const epoch = (t: number) => performance.timeOrigin + t;
      const started = row.recorded.getTime() - row.duration_ms;
      parts.api.push(row.stored.getTime() - epoch(sentAt));
      parts.queue.push(started - row.stored.getTime());
      parts.callback.push(epoch(arrived) - started);
    }
    const show = (values: number[]) => {
      const sorted = values.sort((a, b) => a - b);
      return `${percentile(sorted, 50).toFixed(0)} / ${percentile(sorted, 99).toFixed(0)}`;
    };
    const counted = parts.api.length;
    return `API ${show(parts.api)}, queue and worker ${show(parts.queue)}, callback ${show(parts.callback)} (${counted} deliveries)`;
  } finally {
    await client.end();
  }
}
