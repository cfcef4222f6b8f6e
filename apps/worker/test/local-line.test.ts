import { createLocalLine, type LocalLine } from '../src/local-line';

// The in-process line of deliveries waiting for a fast webhook's slot
// (apps/worker/src/local-line.ts): who may wait, in what order they are
// let go, and the bounds that keep a worker's slots for other webhooks.

const tick = () => new Promise((r) => setImmediate(r));
/** The webhooks were seen answering in `ms`. */
const seen = (line: LocalLine, ms: number, ...webhooks: string[]) => webhooks.forEach((wh) => line.observe(wh, ms));

describe('local line', () => {
  it('lets waiters go in arrival order, one per freed slot of their own webhook', async () => {
    const line = createLocalLine({ maxWaiting: 10, waitMs: 5_000 });
    seen(line, 100, 'wh_a', 'wh_b');
    const order: string[] = [];
    const a1 = line.wait('wh_a', Date.now()).then((w) => order.push(`a1:${JSON.stringify(w)}`));
    const b1 = line.wait('wh_b', Date.now()).then((w) => order.push(`b1:${JSON.stringify(w)}`));
    const a2 = line.wait('wh_a', Date.now()).then((w) => order.push(`a2:${JSON.stringify(w)}`));
    await tick();
    expect(line.waiting()).toBe(3);

    line.freed('wh_a');
    await tick();
    expect(order).toEqual(['a1:"freed"']);
    line.freed('wh_c'); // nobody waits for it
    line.freed('wh_b');
    line.freed('wh_a');
    await Promise.all([a1, b1, a2]);
    expect(order).toEqual(['a1:"freed"', 'b1:"freed"', 'a2:"freed"']);
    expect(line.waiting()).toBe(0);
  });

  it('a delivery that waits again keeps its place: ahead of every delivery that began waiting after it', async () => {
    const line = createLocalLine({ maxWaiting: 10, waitMs: 5_000 });
    seen(line, 5, 'wh_a');
    const began = Date.now();
    const order: string[] = [];
    // `late` began waiting after `early`; `early` comes back to the line (its
    // wait ended, the gate was still full) after `late` joined it.
    const late = line.wait('wh_a', began + 10).then((w) => order.push(`late:${JSON.stringify(w)}`));
    const early = line.wait('wh_a', began).then((w) => order.push(`early:${JSON.stringify(w)}`));
    const later = line.wait('wh_a', began + 20).then((w) => order.push(`later:${JSON.stringify(w)}`));
    await tick();
    expect(line.handOver('wh_a', { id: 'lease-1', expiresAt: 0 })).toBe(true);
    line.freed('wh_a');
    line.freed('wh_a');
    await Promise.all([late, early, later]);
    expect(order).toEqual(['early:{"lease":{"id":"lease-1","expiresAt":0}}', 'late:"freed"', 'later:"freed"']);
  });

  it('a wait ends by itself after a short timeout (the slot may have freed in another process)', async () => {
    const line = createLocalLine({ maxWaiting: 10, waitMs: 30 });
    seen(line, 20, 'wh_a');
    const started = Date.now();
    expect(await line.wait('wh_a', started)).toBe('freed');
    expect(Date.now() - started).toBeGreaterThanOrEqual(25);
    expect(line.waiting()).toBe(0);
    // A later release does not reach the timed-out waiter (nor throw).
    line.freed('wh_a');
  });

  it('a webhook not seen yet, or a slow one, is not waited for: its deliveries are parked', async () => {
    const line = createLocalLine({ maxWaiting: 10, fastMs: 100 });
    expect(await line.wait('wh_new', Date.now())).toBe('park');
    seen(line, 5_000, 'wh_slow');
    expect(await line.wait('wh_slow', Date.now())).toBe('park');
    // A fast one is.
    seen(line, 3, 'wh_fast');
    const waiting = line.wait('wh_fast', Date.now());
    line.freed('wh_fast');
    expect(await waiting).toBe('freed');
  });

  it('the average follows the webhook: one that slows down stops being waited for', async () => {
    const line = createLocalLine({ maxWaiting: 10, fastMs: 100, waitMs: 10 });
    seen(line, 5, 'wh_a');
    expect(await line.wait('wh_a', Date.now())).toBe('freed');
    for (let i = 0; i < 30; i += 1) line.observe('wh_a', 2_000);
    expect(await line.wait('wh_a', Date.now())).toBe('park');
  });

  it('a fast webhook that stops answering is not waited for while one of its attempts here runs too long', async () => {
    const line = createLocalLine({ maxWaiting: 10, fastMs: 30, waitMs: 10 });
    seen(line, 5, 'wh_a');
    line.started('wh_a', 'lease-hung');
    expect(await line.wait('wh_a', Date.now())).toBe('freed');
    // Time itself: the attempt has now run longer than fastMs (30 ms).
    await new Promise((r) => setTimeout(r, 40));
    expect(await line.wait('wh_a', Date.now())).toBe('park');
    // Once that attempt ends (a timeout, say), its duration decides.
    line.observe('wh_a', 10, 'lease-hung');
    expect(await line.wait('wh_a', Date.now())).toBe('freed');
  });

  it('never holds more than maxWaiting of the worker\'s slots', async () => {
    const line = createLocalLine({ maxWaiting: 2, waitMs: 5_000 });
    seen(line, 5, 'wh_a', 'wh_b', 'wh_c');
    const first = line.wait('wh_a', Date.now());
    const second = line.wait('wh_b', Date.now());
    expect(await line.wait('wh_c', Date.now())).toBe('park');
    line.freed('wh_a');
    line.freed('wh_b');
    expect(await Promise.all([first, second])).toEqual(['freed', 'freed']);
    // Room again.
    const third = line.wait('wh_c', Date.now());
    line.freed('wh_c');
    expect(await third).toBe('freed');
  });

  it('a delivery that has waited past the deadline is parked', async () => {
    const line = createLocalLine({ maxWaiting: 10, deadlineMs: 1_000 });
    seen(line, 5, 'wh_a');
    expect(await line.wait('wh_a', Date.now() - 1_001)).toBe('park');
  });

  it('a kept slot is handed to the first delivery waiting for that webhook, in place', async () => {
    const line = createLocalLine({ maxWaiting: 10, waitMs: 5_000 });
    seen(line, 5, 'wh_a');
    expect(line.hasWaiter('wh_a')).toBe(false);
    expect(line.handOver('wh_a', { id: 'lease-0', expiresAt: 0 })).toBe(false);
    const first = line.wait('wh_a', Date.now());
    const second = line.wait('wh_a', Date.now());
    expect(line.hasWaiter('wh_a')).toBe(true);
    expect(line.handOver('wh_a', { id: 'lease-1', expiresAt: 0 })).toBe(true);
    expect(await first).toEqual({ lease: { id: 'lease-1', expiresAt: 0 } });
    line.freed('wh_a');
    expect(await second).toBe('freed');
    expect(line.hasWaiter('wh_a')).toBe(false);
  });
});
