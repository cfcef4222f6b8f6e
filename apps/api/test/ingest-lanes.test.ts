import { startApiHarness, type ApiHarness } from '../../../tests/support/api-harness';
import { FILTERED_LANE_THRESHOLD } from '../src/services/event-publisher';
import { insertWebhook, listen } from './support/pipeline-fixtures';

// An account whose webhook filters list more than FILTERED_LANE_THRESHOLD
// values publishes in a lane of its own: its events never share a match-and-
// write statement with another account's, so its filters cannot slow their
// publishes (docs/security.md, "Filters"). Accounts below it keep sharing.

let h: ApiHarness;
const inserts: string[][] = [];

beforeAll(async () => {
  h = await startApiHarness();
  // A pass-through that records the accounts of the events each INSERT statement carried.
  const sql = h.deps.db.sql;
  const query = sql.query.bind(sql);
  sql.query = ((text: string, params?: unknown[]) => {
    if (/INSERT INTO events/.test(text)) inserts.push((JSON.parse(params![0] as string) as { account_id: string }[]).map((e) => e.account_id));
    return query(text, params);
  });
});
afterAll(() => h?.close());

it('never batches a heavily filtered account\'s events with another account\'s; light accounts still share statements', async () => {
  const [heavy, light, other] = await Promise.all([h.integrator(), h.integrator(), h.integrator()]);
  const filter = { status: Array.from({ length: FILTERED_LANE_THRESHOLD + 1 }, (_, i) => `s${i}`) };
  const hook = await insertWebhook(h, heavy.accountId, { events: ['quota.warning'] });
  await h.deps.db.prisma.webhook.update({ where: { id: hook.id }, data: { filter } });
  // At the threshold, not over it: still the shared lane.
  const small = await insertWebhook(h, light.accountId, { events: ['quota.warning'] });
  await h.deps.db.prisma.webhook.update({ where: { id: small.id }, data: { filter: { status: filter.status.slice(0, FILTERED_LANE_THRESHOLD) } } });
  await insertWebhook(h, other.accountId, { events: ['quota.warning'] });

  const live = await listen(h);
  inserts.length = 0;
  try {
    const accounts = Array.from({ length: 90 }, (_, i) => [heavy, light, other][i % 3].accountId);
    const answers = await Promise.all(
      accounts.map((accountId, seq) =>
        live.agent.post('/internal/v1/events').set({ Authorization: `Bearer ${h.platformToken}` }).send({ account_id: accountId, event: 'quota.warning', data: { usage: seq, limit: 100, status: 's1' } }),
      ),
    );
    expect(answers.map((res) => res.status)).toEqual(accounts.map(() => 202));
    // The filters were applied as ever: each event reached its account's one webhook.
    expect(answers.map((res) => res.body.event.deliveries)).toEqual(accounts.map(() => 1));
  } finally {
    await live.close();
  }
  const withHeavy = inserts.filter((ids) => ids.includes(heavy.accountId));
  expect(withHeavy.length).toBeGreaterThan(0);
  for (const ids of withHeavy) expect(new Set(ids)).toEqual(new Set([heavy.accountId]));
  // Its lane takes at most 10 events a statement.
  expect(Math.max(...withHeavy.map((ids) => ids.length))).toBeLessThanOrEqual(10);
  // The other two shared statements with each other.
  expect(inserts.some((ids) => ids.includes(light.accountId) && ids.includes(other.accountId))).toBe(true);
});
