import { isDatabaseUnreachable, untilDatabaseAnswers } from '../src';

// Pure logic: which errors are an outage to wait out, and the wait itself
// (the real thing, a worker and an API started behind a cut proxy, is in
// tests/delivery/worker-process.test.ts).

const refused = () => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
const delays = { first: 1, max: 4 };

describe('isDatabaseUnreachable', () => {
  it.each([
    ['a refused connection', refused()],
    ['a name that does not resolve yet', Object.assign(new Error('getaddrinfo EAI_AGAIN postgres'), { code: 'EAI_AGAIN' })],
    ['a database still starting (57P03)', Object.assign(new Error('the database system is starting up'), { code: '57P03' })],
    ['a connection ended under it', new Error('Connection terminated unexpectedly')],
    ['wrapped by Prisma', Object.assign(new Error('outer'), { meta: { driverAdapterError: refused() } })],
  ])('%s is an outage', (_name, err) => {
    expect(isDatabaseUnreachable(err)).toBe(true);
  });

  it.each([
    ['a wrong password (28P01)', Object.assign(new Error('password authentication failed for user "hookline"'), { code: '28P01' })],
    ['a missing database (3D000)', Object.assign(new Error('database "nope" does not exist'), { code: '3D000' })],
    ['a failing statement', Object.assign(new Error('syntax error at or near "SELEC"'), { code: '42601' })],
    ['not an error at all', 'ECONNREFUSED'],
  ])('%s is not', (_name, err) => {
    expect(isDatabaseUnreachable(err)).toBe(false);
  });
});

describe('untilDatabaseAnswers', () => {
  it('waits out an outage: tries again until the work succeeds, telling once when the wait begins and once when it ends', async () => {
    let tries = 0;
    const onWait = jest.fn();
    const onBack = jest.fn();
    const value = await untilDatabaseAnswers(async () => {
      tries += 1;
      if (tries < 5) throw refused();
      return 'migrated';
    }, { onWait, onBack, delays });
    expect(value).toBe('migrated');
    expect(tries).toBe(5);
    expect(onWait).toHaveBeenCalledTimes(1);
    expect(onWait.mock.calls[0][0].message).toContain('ECONNREFUSED');
    expect(onBack).toHaveBeenCalledTimes(1);
    expect(onBack.mock.calls[0][0]).toEqual(expect.any(Number));
  });

  it('says nothing when the first try succeeds', async () => {
    const onWait = jest.fn();
    const onBack = jest.fn();
    await expect(untilDatabaseAnswers(async () => 1, { onWait, onBack, delays })).resolves.toBe(1);
    expect([onWait.mock.calls.length, onBack.mock.calls.length]).toEqual([0, 0]);
  });

  it('does not wait on a mistake: the first error that is not an outage ends it', async () => {
    let tries = 0;
    const wrong = Object.assign(new Error('password authentication failed'), { code: '28P01' });
    const onWait = jest.fn();
    await expect(untilDatabaseAnswers(async () => {
      tries += 1;
      if (tries === 1) throw refused();
      throw wrong;
    }, { onWait, onBack: jest.fn(), delays })).rejects.toBe(wrong);
    expect(tries).toBe(2);
    expect(onWait).toHaveBeenCalledTimes(1);
  });
});
