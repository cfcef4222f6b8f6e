#!/usr/bin/env node
// A Hookline (PerfectParser-compatible) webhook receiver that verifies every
// callback before trusting it. Node.js standard library only.
//
//   WEBHOOK_SIGNING_SECRET=whsec_... node examples/verify-node.mjs 8080
//
// Environment:
//   WEBHOOK_SIGNING_SECRET  the webhook's signing_secret (whsec_…), required
//   WEBHOOK_STATIC_SECRET   the static `secret` you set on the webhook, if any (checked against X-Webhook-Secret)
//   WEBHOOK_BRAND           header brand, default PerfectParser (X-PerfectParser-Signature …)
//   PORT / first argument   port to listen on (0: any free port); HOST, default 127.0.0.1
//
// Answers 200 to a verified callback and prints one JSON line for it on
// stdout; answers 401 to anything else (the reason goes to stderr).
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const SIGNING_SECRET = process.env.WEBHOOK_SIGNING_SECRET ?? '';
const STATIC_SECRET = process.env.WEBHOOK_STATIC_SECRET || null;
const BRAND = (process.env.WEBHOOK_BRAND || 'PerfectParser').toLowerCase();
const PORT = Number(process.argv[2] ?? process.env.PORT ?? 8080);
const HOST = process.env.HOST || '127.0.0.1';
const TOLERANCE_SECONDS = 5 * 60;
const MAX_BODY_BYTES = 1024 * 1024;

if (!SIGNING_SECRET.startsWith('whsec_')) {
  console.error('verify-node: set WEBHOOK_SIGNING_SECRET to the webhook\'s signing_secret (it starts with whsec_)');
  process.exit(2);
}

/** Constant-time comparison of two strings of any length (hashing makes the lengths equal). */
function safeEqual(a, b) {
  const digest = (s) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/**
 * X-PerfectParser-Signature: hex HMAC-SHA256 of the raw body, keyed with the
 * whole whsec_ string. During a secret rotation it lists two signatures,
 * comma-separated: accept the callback if any one matches.
 */
function verifyBrandSignature(rawBody, header) {
  if (!header) return false;
  const expected = createHmac('sha256', SIGNING_SECRET).update(rawBody).digest('hex');
  let ok = false;
  for (const candidate of header.split(',')) ok = safeEqual(candidate.trim(), expected) || ok;
  return ok;
}

/**
 * Standard Webhooks: webhook-signature holds space-separated `v1,<base64>`
 * HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<raw body>", keyed with
 * the base64-decoded part of the secret after whsec_.
 */
function verifyStandardSignature(rawBody, id, timestamp, header) {
  if (!id || !timestamp || !header) return false;
  const key = Buffer.from(SIGNING_SECRET.slice('whsec_'.length), 'base64');
  const signed = Buffer.concat([Buffer.from(`${id}.${timestamp}.`, 'utf8'), rawBody]);
  const expected = createHmac('sha256', key).update(signed).digest('base64');
  let ok = false;
  for (const entry of header.split(' ')) {
    const [version, signature] = entry.split(',', 2);
    if (version === 'v1' && signature) ok = safeEqual(signature, expected) || ok;
  }
  return ok;
}

/** Replay protection: a captured callback replayed later carries an old timestamp (and changing it breaks the signature). */
function freshTimestamp(timestamp) {
  if (!/^\d+$/.test(timestamp ?? '')) return false;
  return Math.abs(Date.now() / 1000 - Number(timestamp)) <= TOLERANCE_SECONDS;
}

// Deduplication: a delivery is retried with the same X-PerfectParser-Delivery id
// until it gets a 2xx, so the same callback may arrive more than once. Keep the
// ids you processed (a database unique key in a real app; memory here).
const seen = new Set();
function firstTime(deliveryId) {
  if (seen.has(deliveryId)) return false;
  seen.add(deliveryId);
  if (seen.size > 100_000) seen.delete(seen.values().next().value);
  return true;
}

function verify(req, rawBody) {
  const header = (name) => req.headers[name.toLowerCase()];
  if (STATIC_SECRET !== null && !safeEqual(String(header('x-webhook-secret') ?? ''), STATIC_SECRET)) return 'X-Webhook-Secret does not match';
  if (!verifyBrandSignature(rawBody, header(`x-${BRAND}-signature`))) return `X-${BRAND}-Signature does not match`;
  const id = header('webhook-id');
  const timestamp = header('webhook-timestamp');
  if (!freshTimestamp(timestamp)) return 'webhook-timestamp is missing or more than 5 minutes off';
  if (!verifyStandardSignature(rawBody, id, timestamp, header('webhook-signature'))) return 'webhook-signature does not match';
  return null;
}

const server = createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size > MAX_BODY_BYTES) req.destroy();
    else chunks.push(chunk);
  });
  req.on('end', () => {
    // Verify the bytes as received: parsing and re-serialising JSON changes them.
    const rawBody = Buffer.concat(chunks);
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'POST') return reply(405, { error: 'POST only' });
    const problem = verify(req, rawBody);
    if (problem) {
      console.error(`verify-node: rejected: ${problem}`);
      return reply(401, { error: 'invalid signature' });
    }
    // Only now is the body trusted.
    let payload;
    try {
      payload = JSON.parse(rawBody.toString('utf8'));
    } catch {
      return reply(400, { error: 'body is not JSON' });
    }
    const deliveryId = String(req.headers[`x-${BRAND}-delivery`] ?? req.headers['webhook-id']);
    const duplicate = !firstTime(deliveryId);
    console.log(JSON.stringify({ verified: true, duplicate, delivery_id: deliveryId, event_id: payload.id, event: payload.event, test: payload.test }));
    // Answer fast (within the delivery timeout), then do the real work asynchronously.
    reply(200, { received: true });
  });
});

server.listen(PORT, HOST, () => {
  console.error(`verify-node: listening on http://${HOST}:${server.address().port}`);
});
const stop = () => server.close(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
