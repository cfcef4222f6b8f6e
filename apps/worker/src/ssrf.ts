import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import { isBlockedAddress } from '@hookline/domain';

// SSRF guard: every address a delivery connects to is checked with
// isBlockedAddress (packages/domain/src/addresses.ts), the same check the API
// applies to IP literals in webhook URLs.

export { isBlockedAddress };

export class BlockedAddressError extends Error {
  readonly code = 'EBLOCKED';

  constructor(
    readonly hostname: string,
    readonly address: string,
  ) {
    super(`${hostname} resolves to ${address}, a non-public address`);
    this.name = 'BlockedAddressError';
  }
}

/** The `{ all: true }` form of `dns.lookup`, which is all the guard needs from a resolver. */
export type LookupResolver = (
  hostname: string,
  options: dns.LookupAllOptions,
  callback: (err: NodeJS.ErrnoException | null, addresses: dns.LookupAddress[]) => void,
) => void;

/**
 * A `dns.lookup`-compatible function for `net.connect`/`http.Agent`'s `lookup`
 * option. It runs on every new connection and checks every resolved address,
 * so a hostname that re-resolves to a private address later (DNS rebinding)
 * is refused at the moment of connecting. Checking all addresses, not just
 * the first, matters because Node's happy-eyeballs may connect to any of them.
 *
 * `resolve` is injectable so tests can simulate a rebinding DNS server.
 */
export function createGuardedLookup(resolve: LookupResolver = dns.lookup): LookupFunction {
  return (hostname, rawOptions, callback) => {
    // Be as lenient as dns.lookup itself about the options argument.
    const options: dns.LookupOptions =
      typeof rawOptions === 'number' ? { family: rawOptions } : typeof rawOptions === 'object' && rawOptions !== null ? rawOptions : {};
    const done = (typeof rawOptions === 'function' ? rawOptions : callback);
    const fail = (err: NodeJS.ErrnoException) => done(err, options.all ? [] : '');

    resolve(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return fail(err);
      if (!addresses || addresses.length === 0) {
        const notFound: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        notFound.code = 'ENOTFOUND';
        return fail(notFound);
      }
      const blocked = addresses.find((entry) => isBlockedAddress(entry.address));
      if (blocked) return fail(new BlockedAddressError(hostname, blocked.address));
      if (options.all) return done(null, addresses);
      return done(null, addresses[0].address, addresses[0].family);
    });
  };
}

/** The guard over the system resolver. */
export const guardedLookup: LookupFunction = createGuardedLookup();
