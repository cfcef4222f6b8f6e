import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Express } from 'express';
import { onShutdownSignal, type Logger } from '@hookline/config';

/**
 * Listens until SIGTERM/SIGINT, then shuts down gracefully: stop accepting,
 * let in-flight requests finish (at most `drainMs`), run onClose, exit 0.
 */
export function serveUntilSignal(
  app: Express,
  opts: { port: number; host?: string; logger: Logger; drainMs?: number; onListening?: (port: number) => void; onClose: () => Promise<void> },
): Promise<Server> {
  return new Promise((resolveServer, reject) => {
    const server = app.listen(opts.port, opts.host ?? '0.0.0.0');
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(err.code === 'EADDRINUSE' ? new Error(`port ${opts.port} is already in use; set PORT to a free port`) : err);
    });
    server.once('listening', () => {
      opts.onListening?.((server.address() as AddressInfo).port);
      resolveServer(server);
    });
    const stop = (signal: string) => {
      opts.logger.info('shutting down', { signal });
      server.close(() => undefined);
      server.closeIdleConnections();
      const drained = new Promise<void>((done) => {
        const tick = setInterval(() => {
          server.closeIdleConnections();
          server.getConnections((_err, count) => {
            if (count === 0) {
              clearInterval(tick);
              done();
            }
          });
        }, 50);
        setTimeout(() => {
          clearInterval(tick);
          server.closeAllConnections();
          done();
        }, opts.drainMs ?? 10_000).unref();
      });
      drained
        .then(() => opts.onClose())
        .then(() => process.exit(0))
        .catch((err: Error) => {
          opts.logger.error('shutdown failed', { err: err.message });
          process.exit(1);
        });
    };
    onShutdownSignal(stop, opts.logger);
  });
}
