import type { IncomingMessage, ServerResponse } from 'node:http';
import { WebhookVerificationError } from './errors';
import { createVerifier, type VerifyOptions, type WebhookEvent } from './verify';

// An Express-compatible middleware (also usable from a bare node:http handler)
// that reads the raw body itself, so it works mounted before any JSON parser.
// Typed structurally: this package imports no web framework.

export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** What the middleware reads and sets: `req.body` becomes the verified event, `req.rawBody` the bytes it was verified on. */
export type WebhookRequest = IncomingMessage & { body?: unknown; rawBody?: Buffer };

export type VerifyMiddlewareOptions = VerifyOptions & {
  /** The webhook's `signing_secret` (`whsec_…`), or several while the receiver itself rotates. */
  secret: string | readonly string[];
  /** Most bytes read from a body; more gets 413. Default 1 MiB. */
  limit?: number;
  /**
   * Answers a refused callback instead of the default (the error's status, 400 or 413, and
   * `{"error":{"code","message"}}`), e.g. to log it or answer 401.
   */
  onError?: (error: WebhookVerificationError, req: WebhookRequest, res: ServerResponse) => void;
};

export type VerifyMiddleware = (req: WebhookRequest, res: ServerResponse, next: (err?: unknown) => void) => void;

/**
 * `app.post('/hooks', verifyMiddleware({ secret }), (req, res) => { req.body.event … })`.
 * A wrong secret or option throws here, at start-up, not on the first callback.
 */
export function verifyMiddleware(options: VerifyMiddlewareOptions): VerifyMiddleware {
  const check = createVerifier(options.secret, options);
  const limit = options.limit ?? DEFAULT_BODY_LIMIT;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new TypeError('limit must be a whole number of bytes, 1 or more');
  const refuse = options.onError ?? sendError;

  const handle = async (req: WebhookRequest, res: ServerResponse): Promise<boolean> => {
    try {
      const raw = await readRawBody(req, { limit });
      const event: WebhookEvent = check(raw, req.headers);
      req.rawBody = raw;
      req.body = event;
      return true;
    } catch (err) {
      if (!(err instanceof WebhookVerificationError)) throw err;
      refuse(err, req, res);
      return false;
    }
  };

  return (req, res, next) => {
    // next() runs outside the try above: an error in the route is the route's, not a verification failure.
    handle(req, res).then((verified) => {
      if (verified) next();
    }, next);
  };
}

/**
 * The request's body as bytes: read from the stream, or taken from `req.body` where
 * `express.raw()` (a Buffer) or `express.text()` (a string) already read it.
 * Rejects with `payload_too_large` past `limit` bytes.
 */
export function readRawBody(req: WebhookRequest, opts: { limit?: number } = {}): Promise<Buffer> {
  const limit = opts.limit ?? DEFAULT_BODY_LIMIT;
  if (Buffer.isBuffer(req.body)) return Promise.resolve(req.body);
  if (typeof req.body === 'string') return Promise.resolve(Buffer.from(req.body, 'utf8'));
  if (req.readableEnded) {
    return Promise.reject(new Error('the request body was already read by another parser (express.json()?): mount the webhook verification before it'));
  }
  const tooLarge = () => new WebhookVerificationError('payload_too_large', `the body is larger than ${limit} bytes`);
  const declared = Number(req.headers['content-length']);
  if (Number.isFinite(declared) && declared > limit) return Promise.reject(tooLarge());

  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (err: Error | null) => {
      req.off('data', onData).off('end', onEnd).off('error', finish).off('close', onClose);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks, size));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish(tooLarge());
      else chunks.push(chunk);
    };
    const onEnd = () => finish(null);
    const onClose = () => finish(new Error('the request was aborted before its body was read'));
    req.on('data', onData).on('end', onEnd).on('error', finish).on('close', onClose);
  });
}

function sendError(error: WebhookVerificationError, _req: WebhookRequest, res: ServerResponse): void {
  if (res.headersSent) return;
  res.statusCode = error.status;
  res.setHeader('content-type', 'application/json; charset=utf-8');
  // A body past the limit is left unread: close the connection rather than drain it.
  if (error.code === 'payload_too_large') res.setHeader('connection', 'close');
  res.end(JSON.stringify({ error: { code: error.code, message: error.message } }));
}
