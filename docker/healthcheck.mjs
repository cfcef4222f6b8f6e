// Docker HEALTHCHECK for the one image: probes /readyz of whichever process
// this container runs (HOOKLINE_ROLE, set by docker/entrypoint.sh). Exit 0 is
// healthy, 1 unhealthy. Standard library only: it runs inside the image.
import { request } from 'node:http';

const role = process.env.HOOKLINE_ROLE ?? 'api';
const port = role === 'worker' ? process.env.WORKER_HEALTH_PORT : process.env.PORT ?? '3000';
const path = process.argv[2] ?? '/readyz';

// One-shot roles have nothing to probe.
if (role === 'migrate' || role === 'init-secrets') process.exit(0);
if (!port) {
  console.error('healthcheck: the worker serves /readyz only when WORKER_HEALTH_PORT is set');
  process.exit(1);
}

const req = request({ host: '127.0.0.1', port: Number(port), path, timeout: 4_000 }, (res) => {
  res.resume();
  process.exit(res.statusCode === 200 ? 0 : 1);
});
req.on('timeout', () => req.destroy(new Error('timed out')));
req.on('error', (err) => {
  console.error(`healthcheck: ${err.message}`);
  process.exit(1);
});
req.end();
