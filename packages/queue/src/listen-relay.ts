import type { RedisClient } from './connection';

// The relay between the workers and the API processes holding `hookline
// listen` sockets (docs/listen.md). These strings are Redis keys and channels:
// changing one strands the sessions connected under the old name.
//
// - `<prefix>:listen:{<session>}:holder` names the connection that holds the
//   session now (`<api process id>:<connection id>`), with a short expiry the
//   holder keeps renewing: no holder means the tool is not connected.
// - `<prefix>:listen:{<session>}:seen` lives while a connection holds the
//   session (each renewal sets it to the holder's expiry plus the grace) and
//   LISTEN_SESSION_GRACE after the connection closes: once it is gone, the
//   session is removed.
//   Both keys of a session share the hash tag `{<session>}`, so the scripts that
//   touch both run on one Redis Cluster slot.
// - A worker publishes a callback on `<prefix>:listen:api:<api process id>`,
//   and the API process answers on `<prefix>:listen:reply:<worker id>`
//   (pub/sub channels are not keys: a cluster forwards them to every node).

/** How long a holder stays named without renewal; the API renews every third of it. */
export const LISTEN_HOLDER_TTL_MS = 15_000;

export const listenHolderKey = (prefix: string, sessionId: string): string => `${prefix}:listen:{${sessionId}}:holder`;
export const listenSeenKey = (prefix: string, sessionId: string): string => `${prefix}:listen:{${sessionId}}:seen`;
export const listenApiChannel = (prefix: string, apiId: string): string => `${prefix}:listen:api:${apiId}`;
export const listenReplyChannel = (prefix: string, workerId: string): string => `${prefix}:listen:reply:${workerId}`;

/** A signed callback on its way to the tool: published by a worker, passed on by the API holding the socket. */
export type ListenRequest = {
  request_id: string;
  /** The worker's reply channel. */
  reply_to: string;
  session_id: string;
  /** The holder's connection id (from the holder key): another connection of the session does not take it. */
  connection_id: string;
  delivery_id: string;
  event: string;
  headers: Record<string, string>;
  body: string;
  /** The tool answers within this (the worker gives up then anyway). */
  timeout_ms: number;
};

/** The tool's account of the local request, or the API's when the tool could not give one. */
export type ListenReply = {
  request_id: string;
  /** The local server's status; null when no answer came. */
  status: number | null;
  /** The first 2 KiB of the local answer's body. */
  body: string | null;
  /** What went wrong when no answer came: connection_refused, timeout, connection_reset, … */
  error: string | null;
  duration_ms: number;
  /** The local answer's Retry-After header, if any. */
  retry_after: string | null;
};

/** The holder key's value: `<api process id>:<connection id>`. */
export function parseHolder(value: string | null): { apiId: string; connectionId: string } | null {
  if (!value) return null;
  const at = value.indexOf(':');
  return at > 0 ? { apiId: value.slice(0, at), connectionId: value.slice(at + 1) } : null;
}

/**
 * Takes the session for a connection: it becomes the holder (a newer
 * connection wins over an older one) and the session is seen now.
 * KEYS: holder, seen. ARGV: holder value, holder ttl ms, grace ms.
 */
const CLAIM_SCRIPT = `
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 1`;

/**
 * Renews a holder that is still this connection; 0 when another connection
 * has taken the session over (this one should then close).
 */
const RENEW_SCRIPT = `
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], '1', 'PX', ARGV[3])
return 1`;

/** Lets go of a session this connection still holds; the seen key runs out its grace. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SET', KEYS[2], '1', 'PX', ARGV[2])
return 1`;

// While held, `seen` outlives the holder key by the grace: a holder that dies without releasing
// (its process killed) leaves the session its grace after the holder key ran out.
export async function claimListenSession(redis: RedisClient, prefix: string, sessionId: string, holder: string, graceMs: number): Promise<void> {
  await redis.eval(CLAIM_SCRIPT, 2, listenHolderKey(prefix, sessionId), listenSeenKey(prefix, sessionId), holder, LISTEN_HOLDER_TTL_MS, LISTEN_HOLDER_TTL_MS + graceMs);
}

export async function renewListenSession(redis: RedisClient, prefix: string, sessionId: string, holder: string, graceMs: number): Promise<boolean> {
  return (await redis.eval(RENEW_SCRIPT, 2, listenHolderKey(prefix, sessionId), listenSeenKey(prefix, sessionId), holder, LISTEN_HOLDER_TTL_MS, LISTEN_HOLDER_TTL_MS + graceMs)) === 1;
}

export async function releaseListenSession(redis: RedisClient, prefix: string, sessionId: string, holder: string, graceMs: number): Promise<void> {
  await redis.eval(RELEASE_SCRIPT, 2, listenHolderKey(prefix, sessionId), listenSeenKey(prefix, sessionId), holder, graceMs);
}

/**
 * A connection for SUBSCRIBE, derived from `redis`: it waits for the
 * connection first, since a producer's duplicate has no offline queue to hold
 * the command meanwhile. ioredis subscribes again by itself after a reconnect.
 */
export async function subscribeWhenReady(redis: RedisClient, channel: string): Promise<void> {
  if (redis.status !== 'ready') await new Promise<void>((ready) => redis.once('ready', () => ready()));
  await redis.subscribe(channel);
}
