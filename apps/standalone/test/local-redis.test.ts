import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../../tests/support/local-services';
import { ensureRedis } from '../src/local-redis';

// `npm start` starts a redis-server of its own when nothing answers at a local
// REDIS_URL. When that server cannot start, the one line it fails with says why,
// in redis-server's own words, and what to do. A real redis-server binary.

let squatter: Server;
const held = new Set<Socket>();
let dataDir: string;
afterEach(async () => {
  for (const socket of held) socket.destroy();
  await new Promise<void>((resolve) => squatter.close(() => resolve()));
  rmSync(dataDir, { recursive: true, force: true });
});

it('names the port, redis-server\'s reason and the way out when the port is taken by something that is not Redis', async () => {
  const port = await freePort();
  // Accepts connections and never answers: not a Redis, and the port is taken.
  squatter = createServer((socket) => void held.add(socket));
  await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
  dataDir = mkdtempSync(join(tmpdir(), 'hookline-local-redis-'));

  await expect(ensureRedis(`redis://127.0.0.1:${port}`, dataDir)).rejects.toThrow(
    new RegExp(`^redis-server could not start on port ${port} \\(.*Failed listening on port ${port}.*\\); is the port taken\\? Set REDIS_URL to a running Redis$`),
  );
}, 30_000);
