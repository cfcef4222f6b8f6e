// Durations as the contract writes them: 500ms, 30s, 5m, 2h, 3d.
const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION_RE = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/** Milliseconds, or null when `text` is not a duration. */
export function parseDuration(text: string): number | null {
  const match = DURATION_RE.exec(text.trim());
  if (!match) return null;
  return Math.round(Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS]);
}

/** "5m,10m" → [300000, 600000]; null when any part is not a positive duration. */
export function parseSchedule(text: string): number[] | null {
  const parts = text.split(',').map((part) => parseDuration(part));
  if (parts.length === 0 || parts.some((ms) => ms === null || ms <= 0)) return null;
  return parts as number[];
}

export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms >= UNIT_MS[unit] && ms % UNIT_MS[unit] === 0) return `${ms / UNIT_MS[unit]}${unit}`;
  }
  return `${ms}ms`;
}

/**
 * Why a PARTITION_INTERVAL is refused, or null: whole hours that divide a day,
 * or whole days. A partition's range starts at a multiple of it since the Unix
 * epoch, so a day's ends at UTC midnight (and 7d's on a Thursday).
 */
export function partitionIntervalProblem(ms: number): string | null {
  if (!Number.isInteger(ms) || ms < UNIT_MS.h || ms % UNIT_MS.h !== 0) return 'must be whole hours, at least 1h';
  if (ms < UNIT_MS.d ? UNIT_MS.d % ms !== 0 : ms % UNIT_MS.d !== 0) return 'must divide a day (1h, 2h, 3h, 4h, 6h, 8h, 12h) or be whole days (1d, 7d)';
  return null;
}
