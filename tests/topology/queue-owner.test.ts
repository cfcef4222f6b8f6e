import { installationKey, QueueOwnedElsewhereError } from '@hookline/queue';
import { readInstallationId } from '@hookline/db';
import { createTestDatabase, type TestDatabase } from '../support/test-database';
import { spawnWorkerProcess, startWorkerHarness, workerProcessEnv } from '../support/worker-harness';
import { deliveryReaches, onlyDelivery, startStack, type Stack } from '../delivery/stack';

// Two installations (two databases) on one Redis with the same QUEUE_PREFIX
// would take each other's jobs ("delivery not found; job dropped"). The first
// worker marks the prefix with its database's installation id; a worker of
// another database refuses to start there, with one line naming QUEUE_PREFIX.

describe('a queue prefix belongs to one installation', () => {
  let stack: Stack;
  let other: TestDatabase;
  beforeAll(async () => {
    stack = await startStack();
    other = await createTestDatabase();
  });
  afterAll(async () => {
    await stack?.close();
    await other?.drop();
  });

  it('marks the prefix with this database\'s installation id; another database\'s worker refuses it, in process and as a process', async () => {
    const ours = await readInstallationId(stack.api.database.db.sql);
    const theirs = await readInstallationId(other.db.sql);
    expect(ours).toMatch(/^inst_[0-9a-f]{32}$/);
    expect(theirs).not.toBe(ours);
    expect(await stack.api.redis.hget(installationKey(stack.api.prefix), 'id')).toBe(ours);

    const refused = await startWorkerHarness({ databaseUrl: other.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey }).then(
      () => null,
      (err: Error) => err,
    );
    expect(refused).toBeInstanceOf(QueueOwnedElsewhereError);
    expect(refused!.message).toContain(`QUEUE_PREFIX "${stack.api.prefix}"`);

    const failure = await spawnWorkerProcess(workerProcessEnv({ database: other, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey })).then(
      () => null,
      (err: Error) => err.message,
    );
    const lines = (failure ?? '').split('\n').filter((line) => line.startsWith('hookline:'));
    expect(lines).toEqual([`hookline: the worker could not start: QUEUE_PREFIX "${stack.api.prefix}" on this Redis holds the queues of another Hookline installation (another database); give each installation its own QUEUE_PREFIX`]);
    expect(failure).toMatch(/exited \(1\)/);

    // The owner's deliveries still flow, untouched.
    const r = await stack.receiver();
    const hook = await stack.createWebhook({ url: r.url });
    await stack.publish('quota.warning', {}, 1);
    const { id } = await onlyDelivery(stack, hook.id);
    await deliveryReaches(stack, id, 'succeeded');
    expect(stack.worker.logs.filter((line) => /not found/.test(line.message))).toEqual([]);
  });

  it('a worker of the same database on the same prefix starts (any number may run)', async () => {
    const second = await startWorkerHarness({ databaseUrl: stack.api.database.url, prefix: stack.api.prefix, encryptionKey: stack.api.encryptionKey });
    try {
      await expect(second.delivery.worker.waitUntilReady()).resolves.toBeUndefined();
    } finally {
      await second.close();
    }
  });
});
