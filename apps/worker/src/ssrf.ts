import dns from 'node:dns';
import { isIPv4, isIPv6, type LookupFunction } from 'node:net';

/**
 * SSRF guard: which IP addresses a webhook delivery may connect to.
 *
 * Addresses are parsed into integers (IPv4 as a 32-bit number, IPv6 as a
 * 128-bit bigint) and matched against prefix tables. IPv6 forms that carry an
 * IPv4 address (mapped, compatible, SIIT, NAT64, 6to4) are judged by the
 * embedded IPv4, so `::ffff:7f00:1` is loopback just like `127.0.0.1`.
 */

type Range = readonly [base: string, prefix: number];

const BLOCKED_V4: readonly Range[] = [
  ['0.0.0.0', 8], // "this network", includes unspecified 0.0.0.0
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata endpoints live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.88.99.0', 24], // deprecated 6to4 relay anycast
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes broadcast 255.255.255.255
];

const BLOCKED_V6: readonly Range[] = [
  ['::', 128], // unspecified
  ['::1', 128], // loopback
  ['64:ff9b:1::', 48], // local-use NAT64: translates to whatever the local network decides
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments (includes Teredo 2001::/32)
  ['2001:db8::', 32], // documentation
  ['3fff::', 20], // documentation (RFC 9637)
  ['5f00::', 16], // SRv6 SIDs
  ['fc00::', 7], // unique local (private)
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
];

function parseIPv4(ip: string): number | null {
  if (!isIPv4(ip)) return null;
  const [a, b, c, d] = ip.split('.').map(Number);
  // `>>> 0` keeps the value unsigned: bitwise ops in JS are signed 32-bit.
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function parseIPv6(ip: string): bigint | null {
  // A zone id (`fe80::1%eth0`) does not change what the address is.
  const text = ip.split('%')[0];
  if (!isIPv6(text)) return null;

  // Rewrite a trailing dotted quad (`::ffff:1.2.3.4`) as two hex groups.
  let hex = text;
  const lastColon = hex.lastIndexOf(':');
  const tail = hex.slice(lastColon + 1);
  if (tail.includes('.')) {
    const v4 = parseIPv4(tail);
    if (v4 === null) return null;
    hex = `${hex.slice(0, lastColon + 1)}${(v4 >>> 16).toString(16)}:${(v4 & 0xffff).toString(16)}`;
  }

  let groups: string[];
  const halves = hex.split('::');
  if (halves.length === 2) {
    const head = halves[0] === '' ? [] : halves[0].split(':');
    const rest = halves[1] === '' ? [] : halves[1].split(':');
    groups = [...head, ...Array<string>(8 - head.length - rest.length).fill('0'), ...rest];
  } else {
    groups = hex.split(':');
  }
  if (groups.length !== 8) return null;

  let value = 0n;
  for (const group of groups) value = (value << 16n) | BigInt(parseInt(group, 16));
  return value;
}

// Each range as [network >> shift, shift], so matching is one shift and compare.
// IPv4 uses division because `>>> 32` is a no-op in JS.
const V4_TABLE = BLOCKED_V4.map(([base, prefix]) => {
  const divisor = 2 ** (32 - prefix);
  return [Math.floor((parseIPv4(base) as number) / divisor), divisor] as const;
});
const V6_TABLE = BLOCKED_V6.map(([base, prefix]) => {
  const shift = BigInt(128 - prefix);
  return [(parseIPv6(base) as bigint) >> shift, shift] as const;
});

function isBlockedV4(value: number): boolean {
  return V4_TABLE.some(([network, divisor]) => Math.floor(value / divisor) === network);
}

const V4_MAPPED = parseIPv6('::ffff:0:0') as bigint; // ::ffff:0:0/96
const V4_TRANSLATED = parseIPv6('::ffff:0:0:0') as bigint; // ::ffff:0:0:0/96 (SIIT)
const NAT64 = parseIPv6('64:ff9b::') as bigint; // 64:ff9b::/96
const LOW_32 = 0xffffffffn;

function isBlockedV6(value: bigint): boolean {
  const high96 = value >> 32n;
  const embedded = Number(value & LOW_32);
  // IPv4-compatible (::a.b.c.d, which also covers :: and ::1 as 0.0.0.0/8),
  // IPv4-mapped, SIIT-translated and well-known NAT64 all reach the embedded
  // IPv4 address, so only that address matters.
  if (high96 === 0n || high96 === V4_MAPPED >> 32n || high96 === V4_TRANSLATED >> 32n || high96 === NAT64 >> 32n) {
    return isBlockedV4(embedded);
  }
  // 6to4 (2002:aabb:ccdd::/48) is relayed to the IPv4 address in bits 16..48.
  if (value >> 112n === 0x2002n) {
    if (isBlockedV4(Number((value >> 80n) & LOW_32))) return true;
  }
  if (V6_TABLE.some(([network, shift]) => value >> shift === network)) return true;
  // Only 2000::/3 is allocated as global unicast; anything else cannot be a
  // legitimate public webhook receiver.
  return value >> 125n !== 1n;
}

/**
 * True when a delivery must not connect to `ip`. Anything that is not a valid
 * IPv4 or IPv6 address is blocked too: this is a guard, so it fails closed.
 */
export function isBlockedAddress(ip: string): boolean {
  const v4 = parseIPv4(ip);
  if (v4 !== null) return isBlockedV4(v4);
  const v6 = parseIPv6(ip);
  if (v6 !== null) return isBlockedV6(v6);
  return true;
}

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
    const done = (typeof rawOptions === 'function' ? rawOptions : callback) as Parameters<LookupFunction>[2];
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
