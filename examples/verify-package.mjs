#!/usr/bin/env node
// A Hookline webhook receiver on bare node:http that verifies every callback
// with @hookline/verify (no other dependency).
//
//   npm install /path/to/hookline-verify-1.0.0.tgz      (see docs/verifying-webhooks.md)
//   WEBHOOK_SIGNING_SECRET=whsec_... node verify-package.mjs 8080
//
// Environment:
//   WEBHOOK_SIGNING_SECRET  the webhook's signing_secret (whsec_…), required
//   WEBHOOK_STATIC_SECRET   the static `secret` you set on the webhook, if any (checked against X-Webhook-Secret)
//   WEBHOOK_BRAND           header brand, default PerfectParser (X-PerfectParser-Signature …)
//   PORT / first argument   port to listen on (0: any free port); HOST, default 127.0.0.1
//
// Answers 200 to a verified callback and prints one JSON line for it on
// stdout; answers 400 (413 for an oversized body) to anything else, with the
// reason as {"error":{"code","message"}} (Hookline shows it in the delivery log).
import { createServer } from 'node:http';
import { createVerifier, readRawBody, WebhookVerificationError } from '@hookline/verify';

const PORT = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const HOST = process.env.HOST || '127.0.0.1';

let check;
try {
  // Checks the secret once, at start-up. hexFallback: false because Hookline always sends the
  // Standard Webhooks headers: a callback stripped down to X-<brand>-Signature (which signs no
  // timestamp) is refused instead of accepted at any age.
  check = createVerifier(process.env.WEBHOOK_SIGNING_SECRET ?? '', {
    brand: process.env.WEBHOOK_BRAND || undefined,
    staticSecret: process.env.WEBHOOK_STATIC_SECRET || undefined,
    hexFallback: false,
  });
} catch (err) {
  console.error(`verify-package: ${err.message}`);
  process.exit(2);
}

// Deduplication: a delivery is retried with the same webhook-id until it gets a 2xx, so the
// same callback may arrive more than once. Keep the ids you processed (a database unique key
// in a real app; memory here). webhook-id is signed, so it cannot be changed to slip past this.
const seen = new Set();
function firstTime(deliveryId) {
  if (seen.has(deliveryId)) return false;
  seen.add(deliveryId);
  if (seen.size > 100_000) seen.delete(seen.values().next().value);
  return true;
}

const server = createServer(async (req, res) => {
  const reply = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method !== 'POST') return reply(405, { error: { code: 'method_not_allowed', message: 'POST only' } });
  let event;
  try {
    // The bytes as received: parsing and re-serialising JSON would change them.
    event = check(await readRawBody(req, { limit: 1024 * 1024 }), req.headers);
  } catch (err) {
    if (!(err instanceof WebhookVerificationError)) {
      console.error(`verify-package: ${err.message}`);
      return reply(500, { error: { code: 'internal', message: 'could not read the request' } });
    }
    console.error(`verify-package: rejected: ${err.code}: ${err.message}`);
    return reply(err.status, { error: { code: err.code, message: err.message } });
  }
  // Only now is the event trusted.
  const deliveryId = String(req.headers['webhook-id']);
  const duplicate = !firstTime(deliveryId);
  console.log(JSON.stringify({ verified: true, duplicate, delivery_id: deliveryId, event_id: event.id, event: event.event, test: event.test }));
  // Answer fast (within the delivery timeout), then do the real work asynchronously.
  reply(200, { received: true });
});

server.listen(PORT, HOST, () => {
  console.error(`verify-package: listening on http://${HOST}:${server.address().port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
