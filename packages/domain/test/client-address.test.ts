import { clientAddressKey } from '../src/client-address';

// Every spelling of one client is one key: the budget of each per-address limit.

describe('clientAddressKey', () => {
  it.each([
    ['198.51.100.7', '198.51.100.7'],
    ['198.51.100.7:1234', '198.51.100.7'],
    ['::ffff:198.51.100.7', '198.51.100.7'],
    ['::FFFF:198.51.100.7', '198.51.100.7'],
    ['::ffff:c633:6407', '198.51.100.7'],
    ['0:0:0:0:0:ffff:c633:6407', '198.51.100.7'],
    ['[::ffff:198.51.100.7]:443', '198.51.100.7'],
    [' 198.51.100.7 ', '198.51.100.7'],
  ])('%p is the IPv4 client 198.51.100.7', (raw, key) => {
    expect(clientAddressKey(raw)).toBe(key);
  });

  it('groups IPv6 addresses by /64, whatever their spelling', () => {
    const same = ['2001:db8:1:2::1', '2001:db8:1:2:ffff:ffff:ffff:fffe', '[2001:DB8:1:2::9]:8080', '2001:0db8:0001:0002:0000:0000:0000:0005', '2001:db8:1:2::7%eth0'];
    expect(new Set(same.map(clientAddressKey))).toEqual(new Set(['2001:db8:1:2::/64']));
    expect(clientAddressKey('2001:db8:1:3::1')).toBe('2001:db8:1:3::/64');
    expect(clientAddressKey('::1')).toBe('0:0:0:0::/64');
  });

  it('keeps different IPv4 clients apart', () => {
    expect(clientAddressKey('198.51.100.8')).not.toBe(clientAddressKey('198.51.100.7'));
  });

  it.each([['not-an-ip'], [''], [undefined], ['198.51.100.7:1234:5'], ['1:2:3'], ['999.1.1.1'], ['unknown']])('%p, not an address, is the one key "invalid"', (raw) => {
    expect(clientAddressKey(raw)).toBe('invalid');
  });
});
