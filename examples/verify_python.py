#!/usr/bin/env python3
"""A Hookline (PerfectParser-compatible) webhook receiver that verifies every
callback before trusting it. Python 3 standard library only.

    WEBHOOK_SIGNING_SECRET=whsec_... python3 examples/verify_python.py 8080

Environment:
    WEBHOOK_SIGNING_SECRET  the webhook's signing_secret (whsec_...), required
    WEBHOOK_STATIC_SECRET   the static `secret` you set on the webhook, if any (checked against X-Webhook-Secret)
    WEBHOOK_BRAND           header brand, default PerfectParser (X-PerfectParser-Signature ...)
    PORT / first argument   port to listen on (0: any free port); HOST, default 127.0.0.1

Answers 200 to a verified callback and prints one JSON line for it on stdout;
answers 401 to anything else (the reason goes to stderr).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import signal
import sys
import threading
import time
from collections import OrderedDict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SIGNING_SECRET = os.environ.get("WEBHOOK_SIGNING_SECRET", "")
STATIC_SECRET = os.environ.get("WEBHOOK_STATIC_SECRET") or None
BRAND = os.environ.get("WEBHOOK_BRAND") or "PerfectParser"
PORT = int(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PORT", "8080"))
HOST = os.environ.get("HOST") or "127.0.0.1"
TOLERANCE_SECONDS = 5 * 60
MAX_BODY_BYTES = 1024 * 1024

if not SIGNING_SECRET.startswith("whsec_"):
    print("verify_python: set WEBHOOK_SIGNING_SECRET to the webhook's signing_secret (it starts with whsec_)", file=sys.stderr)
    sys.exit(2)


def safe_equal(a: str, b: str) -> bool:
    """Constant-time comparison (hmac.compare_digest) of two strings."""
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def verify_brand_signature(raw_body: bytes, header: str | None) -> bool:
    """X-PerfectParser-Signature: hex HMAC-SHA256 of the raw body, keyed with the
    whole whsec_ string. During a rotation it lists two, comma-separated."""
    if not header:
        return False
    expected = hmac.new(SIGNING_SECRET.encode("utf-8"), raw_body, hashlib.sha256).hexdigest()
    ok = False
    for candidate in header.split(","):
        ok = safe_equal(candidate.strip(), expected) or ok
    return ok


def verify_standard_signature(raw_body: bytes, msg_id: str | None, timestamp: str | None, header: str | None) -> bool:
    """Standard Webhooks: space-separated `v1,<base64>` HMAC-SHA256 of
    "<webhook-id>.<webhook-timestamp>.<raw body>", keyed with the base64-decoded
    part of the secret after whsec_."""
    if not msg_id or not timestamp or not header:
        return False
    try:
        key = base64.b64decode(SIGNING_SECRET[len("whsec_"):])
    except (binascii.Error, ValueError):
        return False
    signed = f"{msg_id}.{timestamp}.".encode("utf-8") + raw_body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode("ascii")
    ok = False
    for entry in header.split(" "):
        version, _, sig = entry.partition(",")
        if version == "v1" and sig:
            ok = safe_equal(sig, expected) or ok
    return ok


def fresh_timestamp(timestamp: str | None) -> bool:
    """Replay protection: reject a callback whose webhook-timestamp is more than 5 minutes off."""
    if not timestamp or not timestamp.isdigit():
        return False
    return abs(time.time() - int(timestamp)) <= TOLERANCE_SECONDS


# Deduplication: a delivery is retried with the same X-PerfectParser-Delivery id
# until it gets a 2xx. Keep the ids you processed (a unique key in your database
# in a real app; memory here).
_seen: "OrderedDict[str, None]" = OrderedDict()
_seen_lock = threading.Lock()


def first_time(delivery_id: str) -> bool:
    with _seen_lock:
        if delivery_id in _seen:
            return False
        _seen[delivery_id] = None
        if len(_seen) > 100_000:
            _seen.popitem(last=False)
        return True


def verify(headers, raw_body: bytes) -> str | None:
    if STATIC_SECRET is not None and not safe_equal(headers.get("X-Webhook-Secret", ""), STATIC_SECRET):
        return "X-Webhook-Secret does not match"
    if not verify_brand_signature(raw_body, headers.get(f"X-{BRAND}-Signature")):
        return f"X-{BRAND}-Signature does not match"
    timestamp = headers.get("webhook-timestamp")
    if not fresh_timestamp(timestamp):
        return "webhook-timestamp is missing or more than 5 minutes off"
    if not verify_standard_signature(raw_body, headers.get("webhook-id"), timestamp, headers.get("webhook-signature")):
        return "webhook-signature does not match"
    return None


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._reply(413, {"error": "too large"})
            return
        # Verify the bytes as received: parsing and re-serialising JSON changes them.
        raw_body = self.rfile.read(length)
        problem = verify(self.headers, raw_body)
        if problem:
            print(f"verify_python: rejected: {problem}", file=sys.stderr, flush=True)
            self._reply(401, {"error": "invalid signature"})
            return
        payload = json.loads(raw_body)  # only now is the body trusted
        delivery_id = self.headers.get(f"X-{BRAND}-Delivery") or self.headers.get("webhook-id")
        duplicate = not first_time(delivery_id)
        print(json.dumps({"verified": True, "duplicate": duplicate, "delivery_id": delivery_id, "event_id": payload.get("id"),
                          "event": payload.get("event"), "test": payload.get("test")}), flush=True)
        # Answer fast (within the delivery timeout), then do the real work asynchronously.
        self._reply(200, {"received": True})

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass  # keep stdout for the one line per verified callback


def main() -> None:
    server = ThreadingHTTPServer((HOST, PORT), Handler)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    print(f"verify_python: listening on http://{HOST}:{server.server_address[1]}", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
