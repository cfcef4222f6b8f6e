import { Router } from 'express';
import { createAccountBody, createApiKeyBody } from '@hookline/domain';
import type { ApiDeps } from '../deps';
import { requirePlatformToken } from '../middleware/auth';
import { idempotent } from '../middleware/idempotency';
import { createAccount, createApiKey, revokeApiKey } from '../services/accounts';

// The platform API (docs/api.md#the-platform-api): how the extraction platform (and the
// tests) create accounts and keys. Every route needs the platform token.
export function createPlatformRouter(deps: ApiDeps): Router {
  const router = Router();
  const platform = requirePlatformToken(deps);
  // After the token check, so a replay is never served to an unauthenticated caller.
  const once = idempotent(deps);

  router.post('/accounts', platform, once, async (req, res) => {
    const body = createAccountBody.parse(req.body);
    res.status(201).json({ account: await createAccount(deps, body) });
  });

  router.post('/accounts/:id/api-keys', platform, once, async (req, res) => {
    const body = createApiKeyBody.parse(req.body === undefined ? {} : req.body);
    res.status(201).json({ api_key: await createApiKey(deps, String(req.params.id), body.mode) });
  });

  router.delete('/api-keys/:id', platform, async (req, res) => {
    await revokeApiKey(deps, String(req.params.id));
    res.status(204).end();
  });

  return router;
}
