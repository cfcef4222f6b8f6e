import { isDatabaseUnreachable } from './errors';

// A process that starts while PostgreSQL is down (a pod rescheduled during a
// database failover, a compose stack whose database is still starting) waits
// for it instead of exiting: one line when the wait begins, one when it ends,
// and its first statement (the migrations) runs as soon as PostgreSQL
// answers. An error that is not an outage (a wrong password, a database that
// does not exist, a failing migration) still ends the start at once.

export type DatabaseWaitOptions = {
  /** Called once, with the first error, when the wait begins. */
  onWait(err: Error): void;
  /** Called once PostgreSQL answered after a wait, with how long it took. */
  onBack(waitedMs: number): void;
  /** Between tries: doubles from `first` up to `max` (ms). */
  delays?: { first: number; max: number };
};

export const DATABASE_WAIT_DELAYS = { first: 250, max: 5_000 };

export async function untilDatabaseAnswers<T>(work: () => Promise<T>, opts: DatabaseWaitOptions): Promise<T> {
  const delays = opts.delays ?? DATABASE_WAIT_DELAYS;
  let waitingSince: number | null = null;
  for (let delay = delays.first; ; delay = Math.min(delay * 2, delays.max)) {
    try {
      const value = await work();
      if (waitingSince !== null) opts.onBack(Date.now() - waitingSince);
      return value;
    } catch (err) {
      if (!isDatabaseUnreachable(err)) throw err;
      if (waitingSince === null) {
        waitingSince = Date.now();
        opts.onWait(err as Error);
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}
