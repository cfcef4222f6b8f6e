import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';

// A small forward proxy on 127.0.0.1 that only tunnels (HTTP CONNECT), as an
// egress proxy in front of the workers would: it logs every CONNECT it gets,
// can demand Basic credentials (407 otherwise), can refuse tunnels with a
// status of its own, and can be stopped and started again on the same port.

export type ConnectProxy = {
  /** http://127.0.0.1:<port> */
  url: string;
  port: number;
  /** Every CONNECT received, in order: the authority asked for (`host:port`) and the Proxy-Authorization sent. */
  connects: { authority: string; authorization: string | undefined }[];
  /** Answer every CONNECT with this status instead of tunnelling (null: tunnel). */
  refuseWith: number | null;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
};

export async function startConnectProxy(opts: { credentials?: { user: string; password: string } } = {}): Promise<ConnectProxy> {
  const expected = opts.credentials ? `Basic ${Buffer.from(`${opts.credentials.user}:${opts.credentials.password}`).toString('base64')}` : null;
  const sockets = new Set<net.Socket>();
  let server: http.Server | null = null;
  let port = 0;

  const proxy: ConnectProxy = {
    url: '',
    port: 0,
    connects: [],
    refuseWith: null,
    async start() {
      const s = http.createServer((_req, res) => {
        // Absolute-form requests are not offered: Hookline tunnels every callback.
        res.writeHead(405, { connection: 'close' }).end();
      });
      s.on('connection', (socket) => {
        sockets.add(socket);
        socket.on('close', () => sockets.delete(socket));
      });
      s.on('connect', (req: http.IncomingMessage, client: net.Socket, head: Buffer) => {
        const authorization = req.headers['proxy-authorization'];
        proxy.connects.push({ authority: String(req.url), authorization });
        client.on('error', () => client.destroy());
        if (expected !== null && authorization !== expected) {
          client.end('HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm="test"\r\nContent-Length: 0\r\n\r\n');
          return;
        }
        if (proxy.refuseWith !== null) {
          client.end(`HTTP/1.1 ${proxy.refuseWith} Refused By Proxy\r\nContent-Length: 0\r\n\r\n`);
          return;
        }
        const [host, targetPort] = String(req.url).split(/:(?=\d+$)/);
        const upstream = net.connect(Number(targetPort), host.replace(/^\[(.*)\]$/, '$1'), () => {
          client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
          if (head.length > 0) upstream.write(head);
          upstream.pipe(client);
          client.pipe(upstream);
        });
        sockets.add(upstream);
        upstream.on('close', () => sockets.delete(upstream));
        upstream.on('error', () => client.end('HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n'));
      });
      await new Promise<void>((resolve, reject) => {
        s.once('error', reject);
        s.listen(port, '127.0.0.1', () => resolve());
      });
      port = (s.address() as AddressInfo).port;
      proxy.port = port;
      proxy.url = `http://127.0.0.1:${port}`;
      server = s;
    },
    async stop() {
      const s = server;
      server = null;
      if (!s) return;
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    close: () => proxy.stop(),
  };
  await proxy.start();
  return proxy;
}
