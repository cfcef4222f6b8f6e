// npm run demo — the whole flow in one command on the embedded defaults:
// starts Hookline (as `npm start` does: PGlite + local Redis), a receiver on
// 127.0.0.1, registers it, runs a 3-document extraction, and prints each callback
// as it arrives with both signatures verified independently. Exits 0 when done.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { spawnTsx, waitUntil } from './bench/support';

const say = (line: string) => process.stdout.write(`${line}\n`);

function verifyHex(secret: string, body: string, header: string | undefined): boolean {
  const expected = createHmac('sha256', secret).update(body, 'utf8').digest('hex');
  return (header ?? '').split(',').some((sig) => sig.length === expected.length && timingSafeEqual(Buffer.from(sig), Buffer.from(expected)));
}

function verifyStandard(secret: string, body: string, headers: Record<string, string | string[] | undefined>): boolean {
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${String(headers['webhook-id'])}.${String(headers['webhook-timestamp'])}.${body}`).digest('base64');
  return String(headers['webhook-signature'] ?? '')
    .split(' ')
    .some((sig) => sig === `v1,${expected}`);
}

async function main() {
  let signingSecret = '';
  const seen: string[] = [];
  let unverified = 0;
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const hex = verifyHex(signingSecret, body, req.headers['x-perfectparser-signature'] as string | undefined);
      const std = verifyStandard(signingSecret, body, req.headers);
      const payload = JSON.parse(body) as { event: string; data: Record<string, unknown> };
      seen.push(payload.event);
      if (!hex || !std) unverified++;
      say(`  ← ${payload.event.padEnd(30)} delivery ${String(req.headers['x-perfectparser-delivery'])}  hmac ${hex ? 'ok' : 'BAD'}  standard-webhooks ${std ? 'ok' : 'BAD'}  ${JSON.stringify(payload.data).slice(0, 90)}`);
      res.writeHead(hex && std ? 200 : 401).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  const receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks`;

  const port = 3700 + Math.floor(Math.random() * 200);
  const token = `demo_${randomBytes(16).toString('hex')}`;
  say('demo: starting Hookline on the embedded defaults (PGlite in .data/demo, local Redis)…');
  const hookline = spawnTsx('apps/standalone/src/main.ts', { PORT: String(port), PLATFORM_TOKEN: token, HOOKLINE_DATA_DIR: resolve('.data/demo'), ALLOW_PRIVATE_TARGETS: 'true', LOG_LEVEL: 'warn', QUEUE_PREFIX: `hookline-demo-${randomBytes(3).toString('hex')}` }, 'hookline');
  const base = `http://127.0.0.1:${port}`;
  const call = async (method: string, path: string, auth: string, body?: unknown) => {
    const res = await fetch(base + path, { method, headers: { authorization: `Bearer ${auth}`, 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
    const json = await res.json().catch(() => null);
    if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(json)}`);
    return json;
  };
  try {
    await waitUntil(() => fetch(`${base}/readyz`).then((r) => r.ok, () => false), 120_000, 'Hookline to start');
    say(`demo: Hookline is up at ${base}`);
    const { account } = await call('POST', '/internal/v1/accounts', token, { name: 'Demo Inc', plan: 'pro' });
    const { api_key } = await call('POST', `/internal/v1/accounts/${account.id}/api-keys`, token, { mode: 'test' });
    const { webhook } = await call('POST', '/v1/webhooks', api_key.key, { url: receiverUrl, events: ['extraction.document_completed', 'extraction.job_completed'], description: 'demo receiver' });
    signingSecret = webhook.signing_secret;
    say(`demo: registered ${webhook.id} → ${receiverUrl}`);
    const { extraction } = await call('POST', '/internal/v1/extractions', token, { account_id: account.id, parser_id: 'invoices', document_count: 3 });
    say(`demo: extraction ${extraction.extraction_id} with 3 documents; reporting them…`);
    await call('POST', `/internal/v1/extractions/${extraction.extraction_id}/documents/doc_1`, token, { status: 'completed', file_name: 'a.pdf', result: { total: 120.5 } });
    await call('POST', `/internal/v1/extractions/${extraction.extraction_id}/documents/doc_2`, token, { status: 'completed', file_name: 'b.pdf', result: { total: 99 } });
    await call('POST', `/internal/v1/extractions/${extraction.extraction_id}/documents/doc_3`, token, { status: 'failed', file_name: 'c.pdf', error: 'unreadable scan' });
    await waitUntil(() => seen.length >= 4, 30_000, 'the four callbacks');
    if (unverified) throw new Error(`${unverified} callback(s) failed signature verification`);
    say(`demo: received ${seen.length} verified callbacks (3 × extraction.document_completed, 1 × extraction.job_completed). Done.`);
  } finally {
    hookline.kill('SIGTERM');
    await new Promise((r) => hookline.once('exit', r));
    receiver.close();
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`demo: ${err.message}\n`);
    process.exit(1);
  },
);
