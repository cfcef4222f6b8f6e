import { z } from 'zod';
import { accountSchema, apiKeySchema, createAccountBody, createApiKeyBody } from '@hookline/domain';
import { createAccount, createApiKey, revokeApiKey } from '../services/accounts';
import { defineRoute, idParam, json, noContent } from './define';

// The platform API (docs/api.md#the-platform-api): how the extraction platform (and the
// tests) create accounts and keys. Every route needs the platform token.

const AccountAnswer = z.object({ account: accountSchema });
const ApiKeyAnswer = z.object({ api_key: apiKeySchema });

export const platformRoutes = [
  defineRoute({
    method: 'post', path: '/internal/v1/accounts', access: 'platform', idempotent: true, tag: 'Platform', operationId: 'createAccount',
    summary: 'Create an account', body: createAccountBody, responses: { 201: json(AccountAnswer, 'The new account.') },
    handler: (deps) => async (req, res) => {
      const body = createAccountBody.parse(req.body);
      res.status(201).json({ account: await createAccount(deps, body) } satisfies z.infer<typeof AccountAnswer>);
    },
  }),
  defineRoute({
    method: 'post', path: '/internal/v1/accounts/:id/api-keys', access: 'platform', idempotent: true, notFound: true, tag: 'Platform', operationId: 'createApiKey',
    summary: 'Create an API key', description: 'The key is in this answer only.', params: idParam('acct_7Hc2Nq9Lx4Wb1Tz8Km3Vr5Yd'), body: createApiKeyBody,
    responses: { 201: json(ApiKeyAnswer, 'The new key.') },
    handler: (deps) => async (req, res) => {
      const body = createApiKeyBody.parse(req.body === undefined ? {} : req.body);
      res.status(201).json({ api_key: await createApiKey(deps, String(req.params.id), body.mode) } satisfies z.infer<typeof ApiKeyAnswer>);
    },
  }),
  defineRoute({
    method: 'delete', path: '/internal/v1/api-keys/:id', access: 'platform', notFound: true, tag: 'Platform', operationId: 'revokeApiKey',
    summary: 'Revoke an API key', description: 'The key stops working at once.', params: idParam('key_1Xb7Lq3Nc9Tz5Wm2Kr8Vd4Hy'),
    responses: { 204: noContent('Revoked.') },
    handler: (deps) => async (req, res) => {
      await revokeApiKey(deps, String(req.params.id));
      res.status(204).end();
    },
  }),
];
