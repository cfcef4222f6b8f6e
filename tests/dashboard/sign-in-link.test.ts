import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../support/api-harness';
import { createSignInLink, peekSignInLink } from '../../apps/api/src/dashboard/sign-in-link';
import { waitUntil } from '../support/wait-until';

// One-time dashboard sign-in links (the ones `npm start` prints for its demo
// account), over HTTP on a real database and Redis: opening a link changes
// nothing, signing in is a CSRF-checked POST, a link works once, and a revoked
// key, an expired link or a forged token signs nobody in.

let h: ApiHarness;
beforeAll(async () => {
  h = await startApiHarness();
});
afterAll(() => h.close());

const field = (page: string, name: string) => {
  const match = new RegExp(`name="${name}" value="([^"]+)"`).exec(page);
  if (!match) throw new Error(`no ${name} in page: ${page.slice(0, 300)}`);
  return match[1];
};
const sessionKeys = () => h.redis.keys(`${h.prefix}:dash:sess:*`);
const linkKeys = () => h.redis.keys(`${h.prefix}:dash:link:*`);

async function makeLink(ttlSeconds?: number) {
  const account = await h.integrator();
  const link = await createSignInLink(h.redis, h.prefix, { keyId: account.keyId, accountId: account.accountId }, ttlSeconds);
  return { ...account, link, token: new URL(link, 'http://x').searchParams.get('token')! };
}

it('opens a confirmation page (the link stays usable), then signs in once with its POST', async () => {
  const { link, token, accountId } = await makeLink();
  expect(link).toMatch(/^\/dashboard\/sign-in\/link\?token=[A-Za-z0-9_-]{43}$/);
  // Redis holds the token's hash, not the token.
  const [stored] = await linkKeys();
  expect(stored).not.toContain(token);

  const agent = request.agent(h.app);
  // Opened twice (a link preview, then the person): nothing is used up.
  await request(h.app).get(link).expect(200);
  const confirm = await agent.get(link);
  expect(confirm.status).toBe(200);
  expect(confirm.headers['cache-control']).toBe('no-store');
  expect(confirm.text).toContain('Continue to the dashboard');
  expect(confirm.text).toMatch(/<form method="post" action="\/dashboard\/sign-in\/link"/);
  expect(await sessionKeys()).toHaveLength(0);

  const signedIn = await agent.post('/dashboard/sign-in/link').type('form').send({ _csrf: field(confirm.text, '_csrf'), token: field(confirm.text, 'token') });
  expect(signedIn.status).toBe(303);
  expect(signedIn.headers.location).toBe('/dashboard/integrations/webhooks');
  const webhooks = await agent.get('/dashboard/integrations/webhooks');
  expect(webhooks.status).toBe(200);
  expect(await sessionKeys()).toHaveLength(1);
  const session = JSON.parse((await h.redis.get((await sessionKeys())[0]))!);
  expect(session.accountId).toBe(accountId);
  expect(await linkKeys()).toHaveLength(0);

  // Used: a second browser with the same link gets the sign-in form and a notice.
  const other = request.agent(h.app);
  const again = await other.get(link);
  expect(again.status).toBe(410);
  expect(again.text).toContain('This sign-in link has expired or was already used');
  expect(again.text).toContain('name="api_key"');
  const replay = await other.post('/dashboard/sign-in/link').type('form').send({ _csrf: field(again.text, '_csrf'), token });
  expect(replay.status).toBe(410);
  expect(await sessionKeys()).toHaveLength(1);
});

it('refuses the POST without the sign-in form\'s CSRF cookie and token (no login CSRF)', async () => {
  const { link, token } = await makeLink();
  const sessionsBefore = (await sessionKeys()).length;
  const forged = await request(h.app).post('/dashboard/sign-in/link').type('form').send({ _csrf: 'forged', token });
  expect(forged.status).toBe(403);
  expect(forged.text).toContain('Request refused');
  // A CSRF token from another browser's cookie does not count either.
  const victim = request.agent(h.app);
  await victim.get('/dashboard');
  const attackerPage = await request(h.app).get(link);
  const crossed = await victim.post('/dashboard/sign-in/link').type('form').send({ _csrf: field(attackerPage.text, '_csrf'), token });
  expect(crossed.status).toBe(403);
  expect(await sessionKeys()).toHaveLength(sessionsBefore);
  // The link survived the refused attempts.
  expect((await request(h.app).get(link)).status).toBe(200);
});

it('signs nobody in with a revoked key\'s link, an expired link or a made-up token', async () => {
  const revoked = await makeLink();
  const sessionsBefore = (await sessionKeys()).length;
  await h.platform.delete(`/internal/v1/api-keys/${revoked.keyId}`).expect(204);
  expect((await request(h.app).get(revoked.link)).status).toBe(410);
  const agent = request.agent(h.app);
  const form = await agent.get('/dashboard');
  const post = await agent.post('/dashboard/sign-in/link').type('form').send({ _csrf: field(form.text, '_csrf'), token: revoked.token });
  expect(post.status).toBe(410);

  const expiring = await makeLink(1);
  await waitUntil(async () => (await peekSignInLink(h.redis, h.prefix, expiring.token)) === null, 'the link\'s 1 s lifetime over', { timeoutMs: 5_000 });
  expect((await request(h.app).get(expiring.link)).status).toBe(410);

  for (const token of ['x'.repeat(43), '', '../../etc', 'a'.repeat(500)]) {
    const res = await request(h.app).get(`/dashboard/sign-in/link?token=${encodeURIComponent(token)}`);
    expect(res.status).toBe(410);
    expect(res.text).toContain('This sign-in link has expired or was already used');
  }
  expect((await request(h.app).get('/dashboard/sign-in/link')).status).toBe(410);
  expect(await sessionKeys()).toHaveLength(sessionsBefore);
});
