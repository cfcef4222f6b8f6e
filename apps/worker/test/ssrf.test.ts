import type dns from 'node:dns';
import { BlockedAddressError, createGuardedLookup, type LookupResolver } from '../src/ssrf';

// The address check itself (isBlockedAddress) is tested in packages/domain/test/addresses.test.ts.

describe('createGuardedLookup', () => {
  type Answer = dns.LookupAddress[] | NodeJS.ErrnoException;

  /** A fake resolver that answers each call with the next entry of `answers`. */
  function scriptedResolver(answers: Answer[]): { resolve: LookupResolver; calls: dns.LookupAllOptions[] } {
    const calls: dns.LookupAllOptions[] = [];
    const resolve: LookupResolver = (_hostname, options, callback) => {
      calls.push(options);
      const answer = answers[calls.length - 1];
      setImmediate(() => (answer instanceof Error ? callback(answer, []) : callback(null, answer)));
    };
    return { resolve, calls };
  }

  function lookupOnce(
    lookup: ReturnType<typeof createGuardedLookup>,
    hostname: string,
    options: dns.LookupOptions,
  ): Promise<{ err: NodeJS.ErrnoException | null; address: unknown; family?: number }> {
    return new Promise((resolve) => lookup(hostname, options, (err, address, family) => resolve({ err, address, family })));
  }

  const publicV4 = { address: '93.184.216.34', family: 4 };
  const publicV6 = { address: '2606:2800:220:1:248:1893:25c8:1946', family: 6 };
  const loopback = { address: '127.0.0.1', family: 4 };

  it('refuses the second resolution of a rebinding hostname', async () => {
    const { resolve } = scriptedResolver([[publicV4], [loopback]]);
    const lookup = createGuardedLookup(resolve);

    const first = await lookupOnce(lookup, 'rebind.example', { all: true });
    expect(first.err).toBeNull();
    expect(first.address).toEqual([publicV4]);

    const second = await lookupOnce(lookup, 'rebind.example', { all: true });
    expect(second.err).toBeInstanceOf(BlockedAddressError);
    expect(second.err?.code).toBe('EBLOCKED');
    expect((second.err as BlockedAddressError).address).toBe('127.0.0.1');
  });

  it('refuses when any of several addresses is blocked, whatever its position', async () => {
    const { resolve } = scriptedResolver([[publicV4, publicV6, { address: '::ffff:10.0.0.1', family: 6 }]]);
    const result = await lookupOnce(createGuardedLookup(resolve), 'mixed.example', { all: true });
    expect(result.err?.code).toBe('EBLOCKED');
  });

  it('answers the single-address form with the first address and its family', async () => {
    const { resolve, calls } = scriptedResolver([[publicV6, publicV4]]);
    const result = await lookupOnce(createGuardedLookup(resolve), 'ok.example', { family: 0, hints: 32 });
    expect(result).toEqual({ err: null, address: publicV6.address, family: 6 });
    // It always asks the resolver for every address, passing the caller's options through.
    expect(calls).toEqual([{ family: 0, hints: 32, all: true }]);
  });

  it('passes resolver errors through untouched', async () => {
    const notFound: NodeJS.ErrnoException = Object.assign(new Error('getaddrinfo ENOTFOUND nope.invalid'), { code: 'ENOTFOUND' });
    const { resolve } = scriptedResolver([notFound]);
    const result = await lookupOnce(createGuardedLookup(resolve), 'nope.invalid', { all: true });
    expect(result.err).toBe(notFound);
  });

  it('treats an empty answer as not found', async () => {
    const { resolve } = scriptedResolver([[]]);
    const result = await lookupOnce(createGuardedLookup(resolve), 'empty.example', { all: true });
    expect(result.err?.code).toBe('ENOTFOUND');
  });

  it('blocks localhost through the real system resolver', async () => {
    const result = await lookupOnce(createGuardedLookup(), 'localhost', { all: true });
    expect(result.err?.code).toBe('EBLOCKED');
  });
});
