import { fromReply } from '../src/listen-sender';

// The attempt's result from a listen session's reply (listen-sender.ts): the
// tool's account of the local answer read as an HTTP answer would be, and
// nothing it sends can make a result the attempt log cannot hold.

const reply = (fields: Partial<Parameters<typeof fromReply>[0]>) => ({ request_id: 'r', status: null, body: null, error: null, duration_ms: 5, retry_after: null, ...fields });

describe('fromReply', () => {
  it('reads a local answer as an HTTP answer: 2xx succeeds, a 3xx is a redirect, Retry-After only on 429 and 503', () => {
    expect(fromReply(reply({ status: 204, body: '' }), 50)).toEqual({ ok: true, status: 204, body: '', error: null, durationMs: 5, retryAfterMs: null });
    expect(fromReply(reply({ status: 302 }), 50)).toMatchObject({ ok: false, status: 302, error: 'redirect' });
    expect(fromReply(reply({ status: 503, retry_after: '7' }), 50)).toMatchObject({ ok: false, status: 503, error: null, retryAfterMs: 7_000 });
    expect(fromReply(reply({ status: 500, retry_after: '7' }), 50)).toMatchObject({ ok: false, status: 500, retryAfterMs: null });
  });

  it('no local answer: the tool\'s error when it is one the log knows, network_error otherwise', () => {
    expect(fromReply(reply({ error: 'connection_refused' }), 50)).toMatchObject({ ok: false, status: null, body: null, error: 'connection_refused' });
    expect(fromReply(reply({ error: 'timeout' }), 50)).toMatchObject({ error: 'timeout' });
    expect(fromReply(reply({ error: 'blocked_address' }), 50)).toMatchObject({ error: 'network_error' });
    expect(fromReply(reply({ error: 'anything else' }), 50)).toMatchObject({ error: 'network_error' });
    expect(fromReply(reply({ status: 42 }), 50)).toMatchObject({ status: null, error: 'network_error' });
  });

  it('keeps the first 2 KiB of the body without NULs, and never claims more time than the relay took', () => {
    const result = fromReply(reply({ status: 200, body: `a\u0000${'x'.repeat(5_000)}`, duration_ms: 9_999 }), 120);
    expect(result.body).toHaveLength(2047);
    expect(result.body!.startsWith('ax')).toBe(true);
    expect(result.durationMs).toBe(120);
    expect(fromReply(reply({ status: 200, duration_ms: -1 }), 80).durationMs).toBe(80);
  });
});
