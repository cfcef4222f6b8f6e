import { readdirSync, readFileSync } from 'node:fs';

// CPU time per delivery, from /proc (Linux): a figure that moves far less than a
// rate when the machine's speed drifts, so two versions of the code can be
// compared across runs. A process's CPU time counts all its threads (GC
// included). PostgreSQL and Redis are counted by process name, every such
// process on the machine (on a shared server, other users' work is included).
// Elsewhere than Linux every reading is empty and nothing is printed.

/** Clock ticks per second of /proc's utime and stime (USER_HZ: 100 on Linux). */
const TICKS = 100;

/** user + system CPU time of a process, in ms; null when it is gone (or not Linux). */
function processCpuMs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) close with ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / TICKS;
  } catch {
    return null;
  }
}

/** CPU ms of every process whose command name is `name`. */
function namedCpuMs(name: string): number {
  let total = 0;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((entry) => /^\d+$/.test(entry));
  } catch {
    return 0;
  }
  for (const pid of pids) {
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== name) continue;
    } catch {
      continue;
    }
    total += processCpuMs(Number(pid)) ?? 0;
  }
  return total;
}

export type CpuReading = Map<string, number>;

/**
 * CPU ms so far of the child processes ([label, pid]; one label's pids are
 * summed), this process ('bench': the publisher and the receiver), PostgreSQL and Redis.
 */
export function readCpu(children: Array<[string, number | undefined]>): CpuReading {
  const reading: CpuReading = new Map();
  if (processCpuMs(process.pid) === null) return reading;
  for (const [label, pid] of children) {
    const ms = pid === undefined ? null : processCpuMs(pid);
    if (ms !== null) reading.set(label, (reading.get(label) ?? 0) + ms);
  }
  const own = process.cpuUsage();
  reading.set('bench', (own.user + own.system) / 1000);
  reading.set('PostgreSQL', namedCpuMs('postgres'));
  reading.set('Redis', namedCpuMs('redis-server'));
  return reading;
}

/** "worker 0.52, PostgreSQL 0.18, …; total 1.21" ms per delivery between two readings; '' off Linux. */
export function cpuPerDelivery(before: CpuReading, after: CpuReading, deliveries: number): { text: string; total: number; of: (label: string) => number } {
  const per = new Map<string, number>();
  for (const [label, ms] of after) {
    const start = before.get(label);
    if (start !== undefined) per.set(label, (ms - start) / deliveries);
  }
  const total = [...per.values()].reduce((a, b) => a + b, 0);
  const text = per.size === 0 ? '' : `${[...per].map(([label, ms]) => `${label} ${ms.toFixed(2)}`).join(', ')}; total ${total.toFixed(2)}`;
  return { text, total, of: (label) => per.get(label) ?? NaN };
}
