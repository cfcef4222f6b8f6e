import type { Logger } from './logger';

/**
 * Calls `stop` once on the first SIGTERM or SIGINT. A repeated SIGTERM is
 * ignored: under tsx one signal to the process group arrives twice (directly and
 * relayed), and an orchestrator's TERM must never cut in-flight work short — the
 * drain is bounded anyway. A second Ctrl-C, two seconds or more after the first,
 * is an operator insisting: exit at once.
 */
export function onShutdownSignal(stop: (signal: NodeJS.Signals) => void, logger: Logger): void {
  let firstAt = 0;
  const handle = (signal: NodeJS.Signals) => {
    if (!firstAt) {
      firstAt = Date.now();
      stop(signal);
      return;
    }
    if (signal === 'SIGINT' && Date.now() - firstAt >= 2_000) {
      logger.warn('second Ctrl-C: exiting without waiting for in-flight work');
      process.exit(1);
    }
  };
  process.on('SIGTERM', handle);
  process.on('SIGINT', handle);
}
