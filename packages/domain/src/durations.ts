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
