// Tests wait for states, not for time: poll a condition until it holds, and
// fail with a message saying what never happened (and the last value seen).

export type WaitOptions = {
  /** Give up after this long (default 10 s). */
  timeoutMs?: number;
  /** Time between two checks (default 25 ms). */
  intervalMs?: number;
};

/**
 * Resolves with the condition's first truthy result; rejects with `message`
 * once `timeoutMs` has passed. A condition that throws counts as not yet true
 * (a server still starting); its last error is part of the failure message.
 */
export async function waitUntil<T>(condition: () => T | Promise<T>, message: string, opts: WaitOptions = {}): Promise<NonNullable<T>> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const intervalMs = opts.intervalMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await condition();
      if (value) return value;
      last = value;
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const seen = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`waitUntil: ${message} (not within ${timeoutMs} ms; last: ${seen})`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
