import { percentile } from '../bench/support';

// The chaos benchmark's arithmetic, pure so tests/ops/chaos-measure.test.ts can
// check it without services: what was lost, what came twice, how long deliveries
// took, and how long the pipeline took to get back to the offered rate.

export type Latency = { p50: number; p95: number; p99: number };

/** p50/p95/p99 (ms) of accepted→delivered over the delivered keys; NaN when none was. */
export function latencyOf(accepted: Map<string, number>, arrivals: Map<string, number>): Latency {
  const lat: number[] = [];
  for (const [key, at] of accepted) {
    const arrived = arrivals.get(key);
    if (arrived !== undefined) lat.push(arrived - at);
  }
  lat.sort((a, b) => a - b);
  return { p50: percentile(lat, 50), p95: percentile(lat, 95), p99: percentile(lat, 99) };
}

/**
 * Latency by when the delivery was accepted: one row per `bucketMs` of
 * acceptance time from `t0` (seconds from t0, deliveries, p50/p95/max ms of
 * those that arrived), to see which moment of a run its tail comes from.
 */
export function latencyByAcceptance(accepted: Map<string, number>, arrivals: Map<string, number>, t0: number, bucketMs = 5_000): Array<{ fromSeconds: number; deliveries: number; p50: number; p95: number; max: number }> {
  const buckets = new Map<number, number[]>();
  for (const [key, at] of accepted) {
    const arrived = arrivals.get(key);
    if (arrived === undefined) continue;
    const bucket = Math.floor((at - t0) / bucketMs);
    const list = buckets.get(bucket) ?? [];
    list.push(arrived - at);
    buckets.set(bucket, list);
  }
  return [...buckets.entries()].sort((a, b) => a[0] - b[0]).map(([bucket, lat]) => {
    lat.sort((a, b) => a - b);
    return { fromSeconds: (bucket * bucketMs) / 1000, deliveries: lat.length, p50: percentile(lat, 50), p95: percentile(lat, 95), max: lat[lat.length - 1] };
  });
}

/** The accepted keys that never arrived. */
export function lostKeys(accepted: Iterable<string>, arrivals: Map<string, number>): string[] {
  return [...accepted].filter((key) => !arrivals.has(key));
}

export type Duplicates = { deliveries: number; share: number };

/**
 * Deliveries received successfully more than once (each counted once however many
 * times it came again), and their share of the deliveries accepted.
 */
export function duplicatesOf(duplicated: Set<string>, accepted: Map<string, number>): Duplicates {
  let deliveries = 0;
  for (const key of duplicated) if (accepted.has(key)) deliveries++;
  return { deliveries, share: accepted.size ? deliveries / accepted.size : 0 };
}

/** Where the duplicates of a run came from, by when their first copy was answered. */
export type DuplicateCauses = {
  /** First copy answered after a worker was SIGKILLed while sending it: the request was in flight at the kill. */
  inFlightAtKill: number;
  /** First copy answered at most `recentMs` before a kill: answered, not yet recorded when the worker died. */
  answeredJustBeforeKill: number;
  /** First copy answered `recentMs` to `windowMs` before a kill. */
  answeredBeforeKill: number;
  /** Not near any kill: the first copy answered within `windowMs` of another fault's start, or at no fault at all. */
  nearOtherFault: number;
  other: number;
};

/**
 * Sorts each duplicated delivery by the fault that most likely caused it: the
 * first copy's answer time (`arrivals`, ms) against the kills' and other
 * faults' times (ms, same clock). A delivery answered within
 * `afterMs` after a kill was in flight when its worker died (at-least-once
 * delivery must send it again); one answered shortly before a kill had its
 * outcome lost with the worker before it was recorded.
 */
export function duplicateCauses(
  duplicated: Iterable<string>,
  arrivals: Map<string, number>,
  kills: number[],
  faultStarts: number[],
  opts: { afterMs: number; recentMs?: number; windowMs?: number },
): DuplicateCauses {
  const recentMs = opts.recentMs ?? 100;
  const windowMs = opts.windowMs ?? 2_000;
  const causes: DuplicateCauses = { inFlightAtKill: 0, answeredJustBeforeKill: 0, answeredBeforeKill: 0, nearOtherFault: 0, other: 0 };
  for (const key of duplicated) {
    const at = arrivals.get(key);
    if (at === undefined) continue;
    // The kill nearest after the answer (the answer may also come just after a kill, while the request was in flight).
    let gap = Infinity;
    for (const kill of kills) {
      const d = kill - at; // > 0: answered before the kill
      if (d >= -opts.afterMs && d <= windowMs && Math.abs(d) < Math.abs(gap)) gap = d;
    }
    if (gap < 0) causes.inFlightAtKill++;
    else if (gap <= recentMs) causes.answeredJustBeforeKill++;
    else if (gap <= windowMs) causes.answeredBeforeKill++;
    else if (faultStarts.some((start) => Math.abs(at - start) <= windowMs || (at > start && at - start <= windowMs * 2))) causes.nearOtherFault++;
    else causes.other++;
  }
  return causes;
}

/**
 * Seconds from the end of a fault until the delivery rate is back to `share` of
 * the offered rate: arrivals counted in 1 s buckets starting at `faultEnd`; the
 * answer is the start of the first bucket at or above the threshold (0: the
 * first second after the fault already was). null when no bucket before
 * `until` reaches it (nothing was left to deliver at that rate).
 */
export function recoverySeconds(arrivalTimes: Iterable<number>, faultEnd: number, offeredPerSecond: number, until: number, share = 0.9, bucketMs = 1_000): number | null {
  const buckets = Math.max(0, Math.ceil((until - faultEnd) / bucketMs));
  const counts = new Array<number>(buckets).fill(0);
  for (const at of arrivalTimes) {
    if (at < faultEnd || at >= until) continue;
    counts[Math.floor((at - faultEnd) / bucketMs)]++;
  }
  const threshold = share * offeredPerSecond * (bucketMs / 1_000);
  const first = counts.findIndex((n) => n >= threshold);
  return first < 0 ? null : (first * bucketMs) / 1_000;
}

/** Error and warn lines among a process's log lines (the JSON lines winston writes). */
export function countLogLevels(lines: Iterable<string>): { error: number; warn: number } {
  const counts = { error: 0, warn: 0 };
  for (const line of lines) {
    const level = /"level":"(error|warn)"/.exec(line)?.[1] as 'error' | 'warn' | undefined;
    if (level) counts[level]++;
  }
  return counts;
}

/** Splits a stream's chunks into whole lines, keeping a partial last line for the next chunk. */
export function lineSplitter(onLine: (line: string) => void): (chunk: Buffer | string) => void {
  let rest = '';
  return (chunk) => {
    const parts = (rest + chunk.toString()).split('\n');
    rest = parts.pop() ?? '';
    for (const part of parts) onLine(part);
  };
}
