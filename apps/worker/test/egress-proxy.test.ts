import { circuitAfterAttempt, circuitCount, isCircuitFailure } from '@hookline/domain';
import { describeProxy, noProxyMatcher, proxyErrorOf } from '../src/egress-proxy';
import { classifyError } from '../src/sender';

// The egress proxy's pure parts: DELIVERY_NO_PROXY matching, naming a proxy
// failure, and what such a failure does (nothing) to the circuit.

describe('noProxyMatcher (DELIVERY_NO_PROXY)', () => {
  it.each([
    [['example.com'], 'example.com', true],
    [['example.com'], 'hooks.example.com', true],
    [['example.com'], 'EXAMPLE.COM.', true],
    [['example.com'], 'badexample.com', false],
    [['.example.com'], 'example.com', true],
    [['*.example.com'], 'a.b.example.com', true],
    [['10.0.0.7'], '10.0.0.7', true],
    [['10.0.0.7'], '10.0.0.70', false],
    [['[::1]'], '[::1]', true],
    [['*'], 'anything.test', true],
    [[], 'example.com', false],
    [['other.test', ' Example.com '], 'example.com', true],
  ])('%p matches %s: %p', (entries, host, expected) => {
    expect(noProxyMatcher(entries)(host)).toBe(expected);
  });
});

describe('proxyErrorOf', () => {
  it('names a refused CONNECT by its status, a timeout, and a socket error by its code', () => {
    expect(proxyErrorOf(new Error('Bad response: 407'))).toMatchObject({ code: 'EPROXY', reason: 'connect_407' });
    expect(proxyErrorOf(new Error('Proxy timeout'))).toMatchObject({ reason: 'timeout' });
    expect(proxyErrorOf(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toMatchObject({ reason: 'econnrefused' });
    // The sender classifies it as the proxy's, never as the endpoint's connection_refused.
    expect(classifyError(proxyErrorOf(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })))).toBe('proxy_error');
  });

  it('describes the proxy without its credentials', () => {
    expect(describeProxy('http://user:s3cret@proxy.internal:3128')).toBe('http://proxy.internal:3128');
  });
});

describe('a proxy failure and the circuit', () => {
  const proxyFailure = { status: null, error: 'proxy_error' };
  it('neither counts nor resets the failure count, and moves no circuit', () => {
    expect(circuitCount(proxyFailure)).toBe('none');
    expect(circuitCount({ status: null, error: 'connection_refused' })).toBe('failure');
    expect(circuitCount({ status: 200, error: null })).toBe('reset');
    expect(isCircuitFailure(proxyFailure)).toBe(false);
    for (const circuit of ['closed', 'open', 'half_open'] as const) {
      expect(circuitAfterAttempt({ circuit, probe: circuit === 'half_open', consecutiveFailures: 10, threshold: 5, result: proxyFailure })).toBeNull();
    }
  });
});
