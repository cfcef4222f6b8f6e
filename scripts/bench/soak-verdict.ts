// The soak's growth rules (scripts/bench/soak.ts), pure so they can be tested.

export type Sample = {
  seconds: number;
  publishing: boolean;
  published: number;
  delivered: number;
  /** deliveries accepted (published × hooks) and not yet received */
  backlog: number;
  /** jobs waiting, prioritized, active or delayed in the delivery queue */
  queued: number;
  apiRss: number;
  workerRss: number;
  redisUsed: number;
  tables: Record<string, number>;
};

export const RSS_GROWTH_LIMIT = 0.1;
export const REDIS_GROWTH_LIMIT = 1.5;
export const BACKLOG_SECONDS = 10;
export const WARMUP_SHARE = 0.2;
export const WARMUP_MIN_SECONDS = 120;

export const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
export const mb = (bytes: number) => (Number.isFinite(bytes) ? (bytes / 1024 / 1024).toFixed(1) : '-');
const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
/** The lowest value; NaN if any is NaN (a sample that could not be read). */
const floorOf = (xs: number[]) => (xs.some((x) => Number.isNaN(x)) ? NaN : Math.min(...xs));
const thirdsBy = (xs: number[], of: (part: number[]) => number) => {
  const k = Math.floor(xs.length / 3);
  return [xs.slice(0, k), xs.slice(k, xs.length - k), xs.slice(xs.length - k)].map(of);
};
const thirds = (xs: number[]) => thirdsBy(xs, mean);

/** Samples that count as warm-up: the first 20%, or the first 2 minutes if that is more, at most half. */
export function warmUpCount(samples: number, intervalSeconds: number): number {
  return Math.min(Math.floor(samples / 2), Math.max(Math.ceil(samples * WARMUP_SHARE), Math.ceil(WARMUP_MIN_SECONDS / intervalSeconds)));
}

/**
 * Judges the samples taken while publishing (`steady`): RSS of the API and the
 * worker, Redis used_memory and the backlog after warm-up. Returns the lines to
 * print and the failures (empty when it passes).
 */
export function judgeGrowth(steady: Sample[], intervalSeconds: number, deliveryRate: number): { lines: string[]; failures: string[] } {
  const lines: string[] = [];
  const failures: string[] = [];
  const warm = warmUpCount(steady.length, intervalSeconds);
  const post = steady.slice(warm);
  lines.push(`${steady.length} samples while publishing; warm-up ${warm}, judged ${post.length}`);
  if (post.length < 3) {
    lines.push('growth not judged: fewer than 3 samples after warm-up (run longer or sample more often)');
    return { lines, failures };
  }
  // A process's RSS saws up and down with its garbage collector (±30% within a minute is usual): judged on its floor,
  // the lowest sample of each third after warm-up, which a leak raises and a collection does not.
  for (const [name, pick] of [['API', (s: Sample) => s.apiRss], ['worker', (s: Sample) => s.workerRss]] as const) {
    const [f1, f2, f3] = thirdsBy(post.map(pick), floorOf);
    const growth = f3 / f1 - 1;
    const line = `${name} RSS floor (lowest sample) by thirds ${mb(f1)} → ${mb(f2)} → ${mb(f3)} MB (${growth >= 0 ? '+' : ''}${(growth * 100).toFixed(1)}%, limit +${RSS_GROWTH_LIMIT * 100}%)`;
    lines.push(line);
    // NaN (a process gone, or no /proc) fails too.
    if (!(growth <= RSS_GROWTH_LIMIT)) failures.push(line);
  }
  const [r1, r2, r3] = thirds(post.map((s) => s.redisUsed));
  const redisLine = `Redis used_memory by thirds ${mb(r1)} → ${mb(r2)} → ${mb(r3)} MB (fails over ${REDIS_GROWTH_LIMIT}× while rising)`;
  lines.push(redisLine);
  if (r3 > REDIS_GROWTH_LIMIT * r1 && r1 < r2 && r2 < r3) failures.push(`Redis memory grows without bound: ${redisLine}`);
  const [b1, b2, b3] = thirds(post.map((s) => s.backlog));
  const backlogLine = `backlog by thirds ${fmt(b1)} → ${fmt(b2)} → ${fmt(b3)} deliveries (fails over ${fmt(deliveryRate * BACKLOG_SECONDS)} and 1.5× the first)`;
  lines.push(backlogLine);
  if (b3 > deliveryRate * BACKLOG_SECONDS && b3 > 1.5 * b1) failures.push(`the backlog grows: ${backlogLine}`);
  return { lines, failures };
}
