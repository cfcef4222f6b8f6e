import type { Logger } from '@hookline/config';
import { checkReadiness, type ReadinessChecks } from '@hookline/metrics';

// An outage of PostgreSQL or Redis is waited out, not spun through.
//
// A job that fails for an unexpected reason asks `check()` whether a service
// is unreachable (one probe of both answers every job failing at that moment).
// If one is, an outage begins, once: one warning, the worker's BullMQ workers
// paused locally (onStart), and the failed job goes back to the queue without
// spending a BullMQ attempt (worker.ts). From then on the services are probed
// every `intervalMs`; once both answer, one line says so and the workers
// resume (onEnd). Jobs are never counted against the outage, and no line is
// logged per job.

export type Service = keyof ReadinessChecks;

export type OutageState = {
  /** The services found unreachable since the outage began (empty: none). */
  down: Service[];
  /** When the outage began (epoch ms), or null. */
  since: number | null;
};

export type OutageWatch = {
  /**
   * After an unexpected error: true when PostgreSQL or Redis is unreachable
   * (an outage is then under way, begun by this call or an earlier one).
   */
  check(): Promise<boolean>;
  state(): OutageState;
  stop(): void;
};

export type OutageWatchDeps = {
  probes: Record<Service, () => Promise<boolean>>;
  logger: Logger;
  /** How often the services are probed during an outage. */
  intervalMs: number;
  /** Bound on one probe (a blackholed host must not hang it). */
  probeTimeoutMs?: number;
  onStart: () => Promise<void> | void;
  onEnd: () => Promise<void> | void;
};

const NAMES: Record<Service, string> = { postgres: 'PostgreSQL', redis: 'Redis' };
const named = (down: Service[]) => down.map((s) => NAMES[s]).join(' and ');

export function createOutageWatch(deps: OutageWatchDeps): OutageWatch {
  const { logger, intervalMs } = deps;
  // Generous: a busy pool or event loop is slow, not unreachable.
  const timeoutMs = deps.probeTimeoutMs ?? 2_000;
  let down: Service[] = [];
  let since: number | null = null;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  /** The probe in flight, shared by every caller of the moment. */
  let probing: Promise<Service[]> | null = null;

  function probe(): Promise<Service[]> {
    probing ??= checkReadiness(deps.probes, timeoutMs)
      .then(({ checks }) => (Object.keys(checks) as Service[]).filter((s) => checks[s] === 'down'))
      .finally(() => {
        probing = null;
      });
    return probing;
  }

  function begin(found: Service[]): void {
    down = found;
    since = Date.now();
    logger.warn(`${named(found)} unreachable: this worker takes no jobs until it answers again; deliveries wait, none is counted as an attempt`, { services: found });
    Promise.resolve()
      .then(deps.onStart)
      .catch((err: Error) => logger.warn('could not pause the workers for the outage', { err: err.message }));
    schedule();
  }

  function schedule(): void {
    if (stopped) return;
    timer = setTimeout(() => {
      probe().then(async (still) => {
        if (still.length > 0) {
          down = [...new Set([...down, ...still])];
          return schedule();
        }
        const lasted = Date.now() - (since ?? Date.now());
        const was = down;
        down = [];
        since = null;
        logger.info(`${named(was)} reachable again after the outage: this worker takes jobs again`, { services: was, outage_ms: lasted });
        await Promise.resolve()
          .then(deps.onEnd)
          .catch((err: Error) => logger.warn('could not resume the workers after the outage', { err: err.message }));
      }, () => schedule());
    }, intervalMs);
    timer.unref();
  }

  return {
    async check() {
      if (down.length > 0) return true;
      const found = await probe();
      if (found.length === 0 || stopped) return found.length > 0;
      if (down.length === 0) begin(found);
      return true;
    },
    state: () => ({ down: [...down], since }),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
