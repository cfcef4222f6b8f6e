import { z } from 'zod';
import { AppError, attemptSchema, createListenSessionBody, listenSessionSchema, triggerListenSessionBody } from '@hookline/domain';
import { getAuth } from '../middleware/auth';
import { createListenSession, endListenSession, listListenSessions, triggerListenSession } from '../services/listen-sessions';
import { defineRoute, idParam, json, noContent } from './define';

// `hookline listen` sessions (docs/listen.md). The session's WebSocket is an
// upgrade of GET /v1/listen/sessions/:id/connect, served by listen/hub.ts on
// the HTTP server; the route below documents it and answers a plain GET.

const sessionId = idParam('wh_3kTMd9e2Rz8wLq5vN1bXc7Ya');
const SessionCreated = z.object({
  session: listenSessionSchema,
  signing_secret: z.string().meta({ description: 'The session\'s signing secret (whsec_…), in this answer only: callbacks to the local URL verify with it.' }),
});
const SessionList = z.object({ data: z.array(listenSessionSchema) });
const TriggerAttempt = z.object({ attempt: attemptSchema });

export const listenRoutes = [
  defineRoute({
    method: 'post', path: '/v1/listen/sessions', access: 'api_key', plan: true, conflict: true, tag: 'Listen', operationId: 'createListenSession',
    summary: 'Open a listen session',
    description: 'A webhook of the account that lives while `hookline listen` holds its WebSocket (and LISTEN_SESSION_GRACE after); it counts toward MAX_WEBHOOKS_PER_ACCOUNT. Test-mode keys only, unless the operator set LISTEN_ALLOW_LIVE_KEYS (403 FORBIDDEN).',
    body: createListenSessionBody,
    forbidden: true, responses: { 201: json(SessionCreated, 'The session and its signing secret.') },
    handler: (deps) => async (req, res) => {
      const body = createListenSessionBody.parse(req.body === undefined ? {} : req.body);
      res.status(201).json((await createListenSession(deps, getAuth(res), body)) satisfies z.infer<typeof SessionCreated>);
    },
  }),
  defineRoute({
    method: 'get', path: '/v1/listen/sessions', access: 'api_key', plan: true, tag: 'Listen', operationId: 'listListenSessions',
    summary: 'List listen sessions', description: 'The account\'s sessions, newest first, each saying whether a tool is connected to it now.',
    responses: { 200: json(SessionList, 'The sessions.') },
    handler: (deps) => async (_req, res) => {
      res.json({ data: await listListenSessions(deps, getAuth(res).accountId) } satisfies z.infer<typeof SessionList>);
    },
  }),
  defineRoute({
    method: 'get', path: '/v1/listen/sessions/:id/connect', access: 'api_key', plan: true, notFound: true, forbidden: true, tag: 'Listen', operationId: 'connectListenSession',
    summary: 'Connect to a listen session (WebSocket)',
    description: 'A WebSocket upgrade (101): the session\'s callbacks arrive as `{"type":"callback","request_id","delivery_id","event","headers","body","timeout_ms"}` frames, each answered by `{"type":"result","request_id","status","body","duration_ms","error","retry_after"}`. A plain GET, without the upgrade, is a 400.',
    params: sessionId,
    upgrade: true, responses: { 101: noContent('Switching Protocols: the session\'s socket.') },
    handler: () => () => {
      throw new AppError('INVALID_PAYLOAD', 'This endpoint is a WebSocket: connect with an Upgrade: websocket request (`hookline listen` does).');
    },
  }),
  defineRoute({
    method: 'post', path: '/v1/listen/sessions/:id/trigger', access: 'api_key', plan: true, notFound: true, tag: 'Listen', operationId: 'triggerListenSession',
    summary: 'Send a test event to a listen session',
    description: 'A synthetic, signed callback of `event` (one of the session\'s events) with `"test": true`, tried once (no retries); answers once it was tried, with the attempt (the local answer).',
    params: sessionId, body: triggerListenSessionBody, responses: { 200: json(TriggerAttempt, 'The attempt.') },
    handler: (deps) => async (req, res) => {
      const { event } = triggerListenSessionBody.parse(req.body);
      const aborted = new AbortController();
      res.on('close', () => aborted.abort());
      const outcome = await triggerListenSession(deps, getAuth(res).accountId, String(req.params.id), event, { signal: aborted.signal });
      if (outcome) res.json(outcome satisfies z.infer<typeof TriggerAttempt>);
    },
  }),
  defineRoute({
    method: 'delete', path: '/v1/listen/sessions/:id', access: 'api_key', plan: true, notFound: true, tag: 'Listen', operationId: 'endListenSession',
    summary: 'End a listen session', description: 'Removes the session\'s webhook (`hookline listen` does this when it exits); its waiting deliveries are cancelled.',
    params: sessionId, responses: { 204: noContent('Ended.') },
    handler: (deps) => async (req, res) => {
      await endListenSession(deps, getAuth(res).accountId, String(req.params.id));
      res.status(204).end();
    },
  }),
];
