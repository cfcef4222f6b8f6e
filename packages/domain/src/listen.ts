import { z } from 'zod';
import { API_EVENT_NAMES } from './events';

// `hookline listen` sessions (docs/listen.md). A session is a webhook of the
// account whose URL names the session instead of an HTTP endpoint: the worker
// sees the scheme and hands the signed request to the API process holding the
// tool's WebSocket (through Redis) instead of making an HTTP request. No
// request body can set such a URL (webhook URLs must be http:// or https://),
// so only the session routes create one.

/** The URL scheme of a session webhook: `hookline-listen://<webhook id>`. */
export const LISTEN_URL_PREFIX = 'hookline-listen://';

/** The URL stored on a session's webhook row; the session id is the webhook's id. */
export const listenUrl = (webhookId: string): string => `${LISTEN_URL_PREFIX}${webhookId}`;

/** The session (webhook) id a session URL names, or null for any other URL. */
export function listenSessionOf(url: string): string | null {
  if (!url.startsWith(LISTEN_URL_PREFIX)) return null;
  const id = url.slice(LISTEN_URL_PREFIX.length);
  return /^wh_[0-9A-Za-z]{1,64}$/.test(id) ? id : null;
}

/** The excerpt of the local answer kept in the attempt log, as for any callback (the first 2 KiB). */
export const LISTEN_BODY_EXCERPT_BYTES = 2048;

const apiEventName = z.enum(API_EVENT_NAMES, { error: `must be one of ${API_EVENT_NAMES.join(', ')}` });

/** POST /v1/listen/sessions. Without `events`, the session gets every API event. */
export const createListenSessionBody = z.strictObject(
  {
    events: z
      .array(apiEventName, { error: 'must be an array of event names' })
      .min(1, 'must list at least one event')
      .max(API_EVENT_NAMES.length * 4, 'lists too many events')
      .transform((events) => [...new Set(events)])
      .optional(),
  },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'unknown field' : 'must be a JSON object') },
);
export type CreateListenSessionBody = z.infer<typeof createListenSessionBody>;

/** POST /v1/listen/sessions/:id/trigger. */
export const triggerListenSessionBody = z.strictObject(
  { event: apiEventName },
  { error: (issue) => (issue.code === 'unrecognized_keys' ? 'unknown field' : 'must be a JSON object') },
);

const EXAMPLE_SESSION = { id: 'wh_3kTMd9e2Rz8wLq5vN1bXc7Ya', events: ['extraction.document_completed'], connected: true, created_at: '2026-11-23T10:00:00.000Z' };

export const listenSessionSchema = z
  .object({
    id: z.string().meta({ description: 'The session\'s id, which is also its webhook\'s id (it shows in GET /v1/webhooks and counts toward MAX_WEBHOOKS_PER_ACCOUNT).' }),
    events: z.array(apiEventName),
    connected: z.boolean().meta({ description: 'Whether a tool holds the session\'s WebSocket now.' }),
    created_at: z.string().meta({ format: 'date-time' }),
  })
  .meta({ id: 'ListenSession', example: EXAMPLE_SESSION });
export type ListenSession = z.infer<typeof listenSessionSchema>;
