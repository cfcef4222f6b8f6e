import type { RedisClient } from '@hookline/queue';

// The jobs this process is running, with the token that holds each one's
// BullMQ lock. When Redis comes back without its data (restarted empty, a
// failover to a replica that had not caught up), those locks are gone with
// the jobs, yet the deliveries are still running here: some already sent
// and waiting for PostgreSQL to record their answer. The refill
// (relay.ts) would queue them again, and another worker would send them a
// second time. So after every reconnect (and every owner check) each worker
// takes its running jobs' locks again, if they are missing (SET NX: a lock
// that is there, its own or another worker's, is left alone), and BullMQ's
// own renewal keeps them while the jobs run. The refill and the relay skip a
// delivery whose lock is held: a live worker has it in hand.

export type RunningJobs = {
  /** Records a job as running here; call the answer when it ends. */
  track(lockKey: string, token: string): () => void;
  /** Takes again every missing lock of a running job; resolves to how many were missing. */
  reassert(redis: RedisClient, lockMs: number): Promise<number>;
  size(): number;
};

export function createRunningJobs(): RunningJobs {
  // By run, not by job id: after a data loss one job id can run twice here (the old run and the refilled one).
  const runs = new Map<number, { lockKey: string; token: string }>();
  let serial = 0;
  return {
    track(lockKey, token) {
      const id = ++serial;
      runs.set(id, { lockKey, token });
      return () => void runs.delete(id);
    },
    async reassert(redis, lockMs) {
      const answers = await Promise.all([...runs.values()].map(({ lockKey, token }) => redis.set(lockKey, token, 'PX', lockMs, 'NX').catch(() => null)));
      return answers.filter((answer) => answer === 'OK').length;
    },
    size: () => runs.size,
  };
}
