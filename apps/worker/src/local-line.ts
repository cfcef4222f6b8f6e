// A short wait in this process for a slot of a fast webhook.
//
// A delivery refused by the endpoint gate because its webhook's slots are all
// busy is normally parked (back to BullMQ's delayed set, woken later). For a
// webhook that answers fast, a slot frees within milliseconds, and the trip
// through Redis — park, wake, promote, fetch again — costs more than waiting:
// under a backlog that trip was most of the worker's work. So such a delivery
// waits here instead, in a line per webhook, and tries the gate again as soon
// as this process ends an attempt to that webhook (or after a short timeout,
// since the slot may have been another process's). The line is kept in the
// order the deliveries began waiting: one whose try failed again (another
// delivery took the slot first) goes back to its place, not to the end, so
// under a burst no delivery is passed over again and again.
//
// Isolation is kept by these bounds: only a webhook known to be fast may be
// waited for — its recent attempts here took at most `fastMs` on average, and
// none of its attempts running here has taken longer than that so far (a
// webhook not seen yet, a slow one, or one that stopped answering is parked at
// once, as before); a wait is short and a delivery gives up waiting after a
// total deadline; and the waiting deliveries never hold more than `maxWaiting`
// of the worker's slots, so the rest keep fetching other webhooks' deliveries.

export type LocalLineOptions = {
  /** Deliveries waiting in this process at most (a share of WORKER_CONCURRENCY). */
  maxWaiting: number;
  /** A webhook whose attempts take longer than this on average is not waited for. */
  fastMs?: number;
  /** One wait ends after this at the latest, and the gate is asked again. */
  waitMs?: number;
  /** A delivery stops waiting (and is parked) after this much waiting in total. */
  deadlineMs?: number;
};

import type { Lease } from './endpoint-gate';

/** How a wait ended: a slot handed over in place, a slot freed (ask the gate), or give up (park). */
export type Waited = { lease: Lease } | 'freed' | 'park';

export type LocalLine = {
  /** An attempt to the webhook starts here, under `leaseId`. */
  started(webhookId: string, leaseId: string): void;
  /** The attempt under `leaseId` ended after `durationMs` (an average of the recent ones is kept). */
  observe(webhookId: string, durationMs: number, leaseId?: string): void;
  /**
   * Waits for a slot of the webhook to free in this process (or a short
   * timeout); false when this delivery should be parked instead (the webhook
   * is slow, the line is full, or `startedAt` is past the deadline).
   */
  wait(webhookId: string, startedAt: number): Promise<Waited>;
  /** An attempt to the webhook ended here: the first delivery waiting for it tries the gate again. */
  freed(webhookId: string): void;
  /** Whether a delivery of the webhook waits here (a slot could be handed over). */
  hasWaiter(webhookId: string): boolean;
  /** Gives a kept slot to the first delivery waiting for the webhook; false if none waits any more. */
  handOver(webhookId: string, lease: Lease): boolean;
  /** Deliveries waiting now (for tests and metrics). */
  waiting(): number;
};

type Waiter = { since: number; done: (lease?: Lease) => void };

const DEFAULTS = { fastMs: 250, waitMs: 250, deadlineMs: 2_000 } as const;
/** Weight of the newest attempt in the webhook's average duration. */
const ALPHA = 0.2;
/** Averages of webhooks not seen for a while are forgotten, in bulk, past this many. */
const MAX_TRACKED = 10_000;

export function createLocalLine(options: LocalLineOptions): LocalLine {
  const { maxWaiting, fastMs, waitMs, deadlineMs } = { ...DEFAULTS, ...options };
  const average = new Map<string, number>();
  /** Attempts running here: webhook → lease → when it started. */
  const running = new Map<string, Map<string, number>>();
  /** Per webhook, the deliveries waiting, oldest first (by when each began waiting: a delivery that waits again keeps its place). */
  const lines = new Map<string, Array<Waiter>>();
  let waiting = 0;

  function next(webhookId: string): ((lease?: Lease) => void) | undefined {
    const line = lines.get(webhookId);
    const first = line?.shift();
    if (line && line.length === 0) lines.delete(webhookId);
    return first?.done;
  }

  /** Puts a waiter in its place: after every delivery that began waiting before it (most arrive last, so from the end). */
  function enter(line: Waiter[], waiter: Waiter): void {
    let at = line.length;
    while (at > 0 && line[at - 1].since > waiter.since) at -= 1;
    line.splice(at, 0, waiter);
  }

  /** Whether an attempt to the webhook running here has taken longer than a fast one would. */
  function stuck(webhookId: string, now: number): boolean {
    for (const at of running.get(webhookId)?.values() ?? []) if (now - at > fastMs) return true;
    return false;
  }

  return {
    started(webhookId, leaseId) {
      let mine = running.get(webhookId);
      if (!mine) running.set(webhookId, (mine = new Map<string, number>()));
      mine.set(leaseId, Date.now());
    },

    observe(webhookId, durationMs, leaseId) {
      const mine = running.get(webhookId);
      if (mine && leaseId !== undefined) {
        mine.delete(leaseId);
        if (mine.size === 0) running.delete(webhookId);
      }
      const before = average.get(webhookId);
      if (before === undefined && average.size >= MAX_TRACKED) average.clear();
      average.set(webhookId, before === undefined ? durationMs : before + ALPHA * (durationMs - before));
    },

    async wait(webhookId, startedAt) {
      const avg = average.get(webhookId);
      const now = Date.now();
      if (avg === undefined || avg > fastMs || stuck(webhookId, now) || waiting >= maxWaiting || now - startedAt >= deadlineMs) return 'park';
      waiting += 1;
      try {
        return await new Promise<Waited>((resolve) => {
          let line = lines.get(webhookId);
          if (!line) lines.set(webhookId, (line = []));
          const own = line;
          const waiter: Waiter = {
            since: startedAt,
            done: (lease?: Lease) => {
              clearTimeout(timer);
              resolve(lease ? { lease } : 'freed');
            },
          };
          const timer = setTimeout(() => {
            const at = own.indexOf(waiter);
            if (at >= 0) own.splice(at, 1);
            if (own.length === 0 && lines.get(webhookId) === own) lines.delete(webhookId);
            resolve('freed');
          }, Math.min(waitMs, Math.max(10, 4 * avg)));
          enter(own, waiter);
        });
      } finally {
        waiting -= 1;
      }
    },

    freed(webhookId) {
      next(webhookId)?.();
    },
    hasWaiter: (webhookId) => lines.has(webhookId),
    handOver(webhookId, lease) {
      const first = next(webhookId);
      first?.(lease);
      return first !== undefined;
    },
    waiting: () => waiting,
  };
}
