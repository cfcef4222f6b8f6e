import { BlockList, isIP } from 'node:net';

/**
 * Which IP addresses are public: the worker's SSRF guard checks every address a
 * delivery connects to, and the API refuses a webhook URL whose host is a
 * non-public IP literal. Pure: no I/O.
 *
 * Matching is Node's `net.BlockList`, which parses addresses with the
 * platform's inet_pton: every spelling of an address (`::FFFF:7F00:0001`,
 * `::ffff:127.0.0.1`, ...) is the same address, with no hand-written parser to
 * get wrong. IPv6 forms that carry an IPv4 address (compatible, mapped, SIIT,
 * NAT64, 6to4) reach that IPv4 address, so every blocked IPv4 range is also
 * blocked in each of those forms: `::ffff:7f00:1` and `64:ff9b::127.0.0.1`
 * are loopback just like `127.0.0.1`.
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

/**
 * IPv6 /96 prefixes whose last 32 bits are the IPv4 address a connection ends
 * up at, written so that a dotted quad completes them.
 */
const V4_IN_V6_PREFIXES = [
  '::', // IPv4-compatible (deprecated); `::` and `::1` fall in 0.0.0.0/8 here too
  '::ffff:', // IPv4-mapped (BlockList also matches these against IPv4 rules; listed so nothing relies on that)
  '::ffff:0:', // SIIT-translated
  '64:ff9b::', // well-known NAT64
] as const;

/** The 6to4 prefix (2002:aabb:ccdd::/48) that relays to the IPv4 address `v4`. */
function sixToFour(v4: string): string {
  const [a, b, c, d] = v4.split('.').map(Number);
  return `2002:${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}::`;
}

const blocked = new BlockList();
for (const [base, prefix] of BLOCKED_V4) {
  blocked.addSubnet(base, prefix, 'ipv4');
  for (const v6Prefix of V4_IN_V6_PREFIXES) blocked.addSubnet(`${v6Prefix}${base}`, 96 + prefix, 'ipv6');
  blocked.addSubnet(sixToFour(base), 16 + prefix, 'ipv6');
}
for (const [base, prefix] of BLOCKED_V6) blocked.addSubnet(base, prefix, 'ipv6');

/**
 * Where a public receiver can be at all. Only 2000::/3 is allocated as IPv6
 * global unicast; the IPv4-carrying forms are judged by their IPv4 address
 * above. BlockList matches nothing it cannot parse, so an address outside
 * this list, or one inet_pton rejects, is blocked.
 */
const routable = new BlockList();
routable.addSubnet('0.0.0.0', 0, 'ipv4');
routable.addSubnet('2000::', 3, 'ipv6');
for (const v6Prefix of V4_IN_V6_PREFIXES) routable.addSubnet(`${v6Prefix}0.0.0.0`, 96, 'ipv6');

/**
 * True when a delivery must not connect to `ip`. Anything that is not a valid
 * IPv4 or IPv6 address is blocked too: this is a guard, so it fails closed.
 */
export function isBlockedAddress(ip: string): boolean {
  const family = isIP(ip);
  if (family === 0) return true;
  const type = family === 4 ? 'ipv4' : 'ipv6';
  // A zone id (`fe80::1%eth0`) does not change what the address is, and inet_pton rejects it.
  const address = family === 6 ? ip.split('%')[0] : ip;
  return blocked.check(address, type) || !routable.check(address, type);
}

/**
 * Why a webhook URL's host is refused up front, or null when it may be
 * registered: `localhost`, `*.localhost` and IP literals that are not public.
 * `hostname` is a WHATWG URL's (so `127.1` and `0x7f000001` are already
 * `127.0.0.1`, and an IPv6 literal keeps its brackets). Other hostnames pass:
 * what they resolve to can change, so the worker checks at send time.
 */
export function nonPublicHostReason(hostname: string): string | null {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  if (host === 'localhost' || host.endsWith('.localhost')) return `${hostname} is a loopback name`;
  const literal = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (isIP(literal) === 0) return null;
  return isBlockedAddress(literal) ? `${literal} is not a public address` : null;
}
