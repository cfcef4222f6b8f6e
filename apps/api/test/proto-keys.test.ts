import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';

// A "__proto__" key in a request body would vanish when the body is parsed
// into an object (it sets a copy's prototype instead): it is refused with 400,
// naming its path. "constructor" is an ordinary key and is kept verbatim.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

const publishRaw = (json: string) =>
  request(h.app).post('/internal/v1/events').set('Authorization', `Bearer ${h.platformToken}`).set('Content-Type', 'application/json').send(json);

it.each([
  ['{"usage":80,"limit":100,"__proto__":{"polluted":true}}', 'data.__proto__'],
  ['{"usage":80,"limit":100,"plan":{"tier":"pro","__proto__":{"polluted":true}}}', 'data.plan.__proto__'],
  ['{"usage":80,"limit":100,"list":[{"__proto__":1}]}', 'data.list.0.__proto__'],
])('refuses quota.warning data %s with 400 naming %s', async (data, path) => {
  const { id } = await h.createAccount();
  const res = await publishRaw(`{"account_id":"${id}","event":"quota.warning","data":${data}}`);
  expect(res.status).toBe(400);
  expect(res.body).toEqual({
    error: {
      code: 'INVALID_PAYLOAD',
      message: `${path}: is a key named "__proto__", which is reserved: it cannot be stored or passed on as given; rename it`,
      details: [{ path, message: 'is a key named "__proto__", which is reserved: it cannot be stored or passed on as given; rename it' }],
    },
  });
  expect(await h.database.db.prisma.event.count({ where: { accountId: id } })).toBe(0);
  expect(({} as Record<string, unknown>).polluted).toBeUndefined();
});

it('keeps a "constructor" key verbatim, at the top of quota data and deeper', async () => {
  const { id } = await h.createAccount();
  const res = await publishRaw(`{"account_id":"${id}","event":"quota.warning","data":{"usage":80,"limit":100,"constructor":{"name":"x"},"plan":{"constructor":"y"}}}`);
  expect(res.status).toBe(202);
  const stored = await h.database.db.prisma.event.findFirstOrThrow({ where: { accountId: id } });
  expect(stored.data).toEqual({ usage: 80, limit: 100, constructor: { name: 'x' }, plan: { constructor: 'y' } });
});
