import { isIP } from 'node:net';

/**
 * The key a per-address limit counts a client under. Every limit that counts
 * per address goes through this one function, so every spelling of one client
 * is one budget:
 * - a port is dropped (`198.51.100.7:1234`, `[2001:db8::1]:443`), and so is an
 *   IPv6 zone (`fe80::1%eth0`);
 * - an IPv4-mapped IPv6 address is its IPv4 address (`::ffff:198.51.100.7`,
 *   `::ffff:c633:6407`): a dual-stack socket reports IPv4 clients that way;
 * - an IPv6 address counts as its /64 (`2001:db8:1:2::/64`): one subscriber
 *   usually holds a whole /64, so counting single addresses would give it
 *   2^64 budgets;
 * - anything that is not an address (a proxy forwarding garbage) shares the
 *   one key `invalid`, so made-up strings cannot buy fresh budgets either.
 * Pure: no I/O.
 */
export function clientAddressKey(raw: string | undefined | null): string {
  const address = stripPort((raw ?? '').trim().toLowerCase());
  const family = isIP(address);
  if (family === 4) return address;
  if (family !== 6) return 'invalid';
  const groups = ipv6Groups(address);
  if (!groups) return 'invalid';
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6] >> 8, groups[6] & 0xff, groups[7] >> 8, groups[7] & 0xff].join('.');
  }
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** `a.b.c.d:port` → `a.b.c.d`; `[v6]:port` or `[v6]` → `v6`; a zone id is dropped. */
function stripPort(text: string): string {
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(text);
  const bare = bracketed ? bracketed[1] : /^(\d{1,3}(?:\.\d{1,3}){3}):\d+$/.exec(text)?.[1] ?? text;
  const zone = bare.indexOf('%');
  return zone >= 0 ? bare.slice(0, zone) : bare;
}

/** The eight 16-bit groups of an IPv6 address `isIP` accepted (a trailing dotted IPv4 included). */
function ipv6Groups(address: string): number[] | null {
  // A trailing dotted IPv4 becomes its two hex groups: "::ffff:1.2.3.4" → "::ffff:102:304".
  const text = address.replace(/(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`);
  const halves = text.split('::');
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const left = parse(halves[0]);
  const right = halves.length === 2 ? parse(halves[1]) : [];
  const missing = 8 - left.length - right.length;
  if (missing < 0 || (halves.length === 1 && missing !== 0)) return null;
  const groups = [...left, ...new Array<number>(missing).fill(0), ...right];
  return groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : null;
}
