import { WAITING_STATUSES } from '@hookline/domain';
import { listMigrations, sqlList, WAITING_STATUSES_SQL } from '../src';

// The waiting statuses are written once (WAITING_STATUSES) and the SQL list is
// built from them; the partial index's predicate is written in a migration,
// so this holds the two together: a status added to one and not the other fails here.

const INDEX = 'deliveries_waiting_next_attempt_at_id_idx';

/** The predicate's status list of the last migration that creates the index. */
function indexedStatuses(): string {
  const creates = listMigrations()
    .map(({ sql }) => new RegExp(`CREATE INDEX "${INDEX}" ON "deliveries" \\([^)]*\\) WHERE "status" IN (\\([^)]*\\));`).exec(sql))
    .filter((match) => match !== null);
  expect(creates.length).toBeGreaterThan(0);
  return creates[creates.length - 1][1];
}

it('the SQL list of waiting statuses is the partial index\'s predicate', () => {
  expect(WAITING_STATUSES_SQL).toBe(indexedStatuses());
  expect(WAITING_STATUSES_SQL).toBe(sqlList(WAITING_STATUSES));
});

it('no later migration drops the index without creating it again', () => {
  const touching = listMigrations().filter(({ sql }) => sql.includes(`"${INDEX}"`));
  expect(touching[touching.length - 1].sql).toMatch(new RegExp(`CREATE INDEX "${INDEX}"`));
});

it('builds a list only from constants', () => {
  expect(sqlList(['pending', 'pending_retry'])).toBe("('pending', 'pending_retry')");
  expect(() => sqlList(["x'); DROP TABLE deliveries; --"])).toThrow(/not an SQL constant/);
});
