import { isBlockedAddress, nonPublicHostReason } from '../src/addresses';

describe('isBlockedAddress', () => {
  const blocked = [
    // IPv4 loopback, private, link-local, CGNAT
    '127.0.0.1', '127.255.255.254', '10.0.0.1', '10.255.255.255', '172.16.0.1', '172.31.255.255',
    '192.168.0.1', '192.168.255.255', '169.254.169.254', '169.254.0.1', '100.64.0.1', '100.127.255.255',
    // unspecified, broadcast, multicast, reserved
    '0.0.0.0', '0.1.2.3', '255.255.255.255', '224.0.0.1', '239.255.255.250', '240.0.0.1', '250.1.2.3',
    // IETF, documentation, benchmarking, 6to4 relay
    '192.0.0.8', '192.0.2.1', '198.51.100.7', '203.0.113.9', '198.18.0.1', '198.19.255.255', '192.88.99.1',
    // IPv6 loopback, unspecified, unique local, link-local, site-local, multicast
    '::1', '::', '0:0:0:0:0:0:0:1', 'fc00::1', 'fd12:3456:789a::1', 'fe80::1', 'fe80::1%eth0', 'febf::1', 'fec0::1',
    'ff02::1', 'ff0e::1',
    // IPv4-mapped (dotted and hex), IPv4-compatible, SIIT, NAT64 and 6to4 carrying a blocked IPv4
    '::ffff:127.0.0.1', '::ffff:7f00:1', '::FFFF:7F00:0001', '::ffff:10.0.0.1', '::ffff:a9fe:a9fe', '::ffff:0.0.0.0',
    '0:0:0:0:0:ffff:192.168.1.1', '::127.0.0.1', '::7f00:1', '::ffff:0:127.0.0.1', '64:ff9b::127.0.0.1',
    '64:ff9b::a00:1', '2002:7f00:1::1', '2002:c0a8:101::',
    // documentation, discard, IETF-reserved (incl. Teredo), local NAT64, unallocated space outside 2000::/3
    '2001:db8::1', '2001:db8:ffff::1', '3fff::1', '100::1', '100::ffff:ffff:ffff:ffff', '2001::1', '2001:0:4136:e378::1',
    '2001:1ff::1', '64:ff9b:1::1', '4000::1', '1::1', 'e000::1',
    // other spellings of blocked addresses: expanded, zero-padded, upper case
    '0000:0000:0000:0000:0000:0000:0000:0001', '0000:0000:0000:0000:0000:ffff:7f00:0001', '064:ff9b::7f00:1',
    '2001:0DB8::1', 'FE80::1', '2002:7f00:0001::',
    // not an IP address at all (a zone id only belongs on IPv6, octets have no leading zeros): fails closed
    'localhost', 'example.com', '', '1.2.3', '1.2.3.4.5', '256.1.1.1', '::ffff:1.2.3.256', 'fe80::1::2',
    '8.8.8.8%eth0', '010.0.0.1', '::ffff:127.1', '[::1]', ' 8.8.8.8',
  ];
  const allowed = [
    '8.8.8.8', '1.1.1.1', '93.184.216.34', '151.101.1.69', '9.255.255.255', '11.0.0.1', '100.63.255.255',
    '100.128.0.1', '126.255.255.255', '128.0.0.1', '169.253.255.255', '169.255.0.1', '172.15.255.255',
    '172.32.0.1', '191.255.255.255', '192.0.1.1', '192.0.3.1', '192.167.255.255', '192.169.0.1', '198.17.255.255',
    '198.20.0.1', '198.51.99.1', '203.0.112.1', '223.255.255.255',
    '2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:80b::200e', '2400:cb00::1', '2001:200::1',
    '2001:db9::1', '3ffe::1', '3fff:1000::1', '2606:4700:4700:0000:0000:0000:0000:1111', '2A00:1450:4001:80B::200E',
    // embedded public IPv4
    '::ffff:8.8.8.8', '::ffff:808:808', '64:ff9b::8.8.8.8', '64:ff9b::101:101', '2002:808:808::1', '::8.8.8.8',
  ];

  it.each(blocked)('blocks %s', (ip) => {
    expect(isBlockedAddress(ip)).toBe(true);
  });

  it.each(allowed)('allows %s', (ip) => {
    expect(isBlockedAddress(ip)).toBe(false);
  });
});

describe('IPv6 forms that carry an IPv4 address are judged by that address', () => {
  const hexGroups = (v4: string) => {
    const [a, b, c, d] = v4.split('.').map(Number);
    return `${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  };
  const forms: Array<[string, (v4: string) => string]> = [
    ['IPv4-compatible', (v4) => `::${v4}`],
    ['IPv4-mapped', (v4) => `::ffff:${v4}`],
    ['IPv4-mapped in hex', (v4) => `::ffff:${hexGroups(v4)}`],
    ['SIIT-translated', (v4) => `::ffff:0:${v4}`],
    ['well-known NAT64', (v4) => `64:ff9b::${v4}`],
    ['NAT64 in hex', (v4) => `64:ff9b::${hexGroups(v4)}`],
    ['6to4', (v4) => `2002:${hexGroups(v4)}::1`],
  ];
  // Every blocked IPv4 range, at both ends where the range is small enough to matter.
  const blockedV4 = [
    '0.0.0.0', '0.255.255.255', '10.0.0.0', '10.255.255.255', '100.64.0.0', '100.127.255.255', '127.0.0.1',
    '127.255.255.255', '169.254.0.0', '169.254.169.254', '169.254.255.255', '172.16.0.0', '172.31.255.255',
    '192.0.0.0', '192.0.0.255', '192.0.2.0', '192.0.2.255', '192.88.99.0', '192.88.99.255', '192.168.0.0',
    '192.168.255.255', '198.18.0.0', '198.19.255.255', '198.51.100.0', '198.51.100.255', '203.0.113.0',
    '203.0.113.255', '224.0.0.0', '239.255.255.255', '240.0.0.0', '255.255.255.255',
  ];
  // The public neighbours of those ranges.
  const publicV4 = [
    '1.0.0.0', '9.255.255.255', '11.0.0.0', '100.63.255.255', '100.128.0.0', '126.255.255.255', '128.0.0.0',
    '169.253.255.255', '169.255.0.0', '172.15.255.255', '172.32.0.0', '191.255.255.255', '192.0.1.0',
    '192.0.3.0', '192.88.98.255', '192.88.100.0', '192.167.255.255', '192.169.0.0', '198.17.255.255',
    '198.20.0.0', '198.51.99.255', '198.51.101.0', '203.0.112.255', '203.0.114.0', '223.255.255.255',
    '8.8.8.8',
  ];

  it('agrees with the IPv4 samples themselves', () => {
    expect(blockedV4.filter((v4) => !isBlockedAddress(v4))).toEqual([]);
    expect(publicV4.filter((v4) => isBlockedAddress(v4))).toEqual([]);
  });

  it.each(forms)('%s: blocked exactly when the embedded IPv4 is', (_name, embed) => {
    expect(blockedV4.map(embed).filter((ip) => !isBlockedAddress(ip))).toEqual([]);
    expect(publicV4.map(embed).filter((ip) => isBlockedAddress(ip))).toEqual([]);
  });
});

describe('nonPublicHostReason: the host of a webhook URL, as the WHATWG URL parser leaves it', () => {
  const hostOf = (url: string) => new URL(url).hostname;

  it.each([
    'http://127.0.0.1/', 'http://127.1/', 'http://0x7f000001/', 'http://2130706433/', 'http://0177.0.0.1/',
    'http://[::1]/', 'http://[::ffff:10.0.0.1]/', 'http://[::ffff:7f00:1]/', 'http://169.254.169.254/latest/meta-data',
    'http://10.1.2.3:8080/', 'http://192.168.1.1/', 'http://[fe80::1]/', 'http://0.0.0.0/', 'http://[64:ff9b::7f00:1]/',
  ])('refuses %s as not public', (url) => {
    expect(nonPublicHostReason(hostOf(url))).toMatch(/is not a public address$/);
  });

  it.each(['http://localhost:3000/', 'http://LOCALHOST./', 'http://api.localhost/', 'http://a.b.localhost/'])('refuses %s as loopback', (url) => {
    expect(nonPublicHostReason(hostOf(url))).toMatch(/loopback name/);
  });

  it.each(['https://8.8.8.8/', 'https://[2606:4700:4700::1111]/', 'https://example.com/', 'https://localhost.example.com/', 'https://10.example/'])(
    'accepts %s (a public literal, or a name whose address can change)',
    (url) => {
      expect(nonPublicHostReason(hostOf(url))).toBeNull();
    },
  );
});
