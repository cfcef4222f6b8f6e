import { WAITING_STATUSES } from '@hookline/domain';
import { listMigrations, sqlList, WAITING_STATUSES_SQL } from '../src';

// The waiting statuses are written once (WAITING_STATUSES) and the SQL list is
// built from them; the trigger that keeps the waiting set (waiting_deliveries)
// is written in a migration, so this holds the two together: a status added to
// one and not the other fails here.

const TRIGGER_FUNCTION = 'hookline_track_waiting';

/** The body of the last migration's definition of the trigger function. */
function triggerBody(): string {
  const defines = listMigrations()
    .map(({ sql }) => new RegExp(`CREATE (?:OR REPLACE )?FUNCTION ${TRIGGER_FUNCTION}\\(\\)[\\s\\S]*?\\$\\$([\\s\\S]*?)\\$\\$`).exec(sql))
    .filter((match) => match !== null);
  expect(defines.length).toBeGreaterThan(0);
  return defines[defines.length - 1][1];
}

it('the trigger that keeps the waiting set tests the same statuses as WAITING_STATUSES_SQL, on the way in and out', () => {
  const body = triggerBody();
  const lists = [...body.matchAll(/\.status IN (\([^)]*\))/g)].map((m) => m[1]);
  expect(lists).toEqual([WAITING_STATUSES_SQL, WAITING_STATUSES_SQL]);
  expect(WAITING_STATUSES_SQL).toBe(sqlList(WAITING_STATUSES));
});

it('builds a list only from constants', () => {
  expect(sqlList(['pending', 'pending_retry'])).toBe("('pending', 'pending_retry')");
  expect(() => sqlList(["x'); DROP TABLE deliveries; --"])).toThrow(/not an SQL constant/);
});
