import request from 'supertest';
import { startApiHarness, type ApiHarness } from '../support/api-harness';

// With NODE_ENV=production the dashboard's cookies are always Secure, even when
// the request reached the app over plain http (TLS ended at a proxy the app does
// not trust); elsewhere they are Secure only over https, so http://localhost works.

const cookiesOf = (res: request.Response): string[] => {
  const header = res.headers['set-cookie'] as unknown;
  return Array.isArray(header) ? (header as string[]) : typeof header === 'string' ? [header] : [];
};
const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)![1];

async function signInCookies(h: ApiHarness): Promise<{ signIn: string[]; session: string[] }> {
  const { key } = await h.integrator();
  // By hand, not with an agent: a client over http (rightly) never sends a Secure cookie back.
  const page = await request(h.app).get('/dashboard');
  const cookie = cookiesOf(page).map((c) => c.split(';')[0]).join('; ');
  const res = await request(h.app).post('/dashboard/sign-in').set('Cookie', cookie).type('form').send({ _csrf: csrfOf(page.text), api_key: key });
  expect(res.status).toBe(303);
  return { signIn: cookiesOf(page), session: cookiesOf(res).filter((c) => !/Expires=Thu, 01 Jan 1970/.test(c)) };
}

it('in production, the sign-in and session cookies are Secure over plain http', async () => {
  const h = await startApiHarness({ config: { NODE_ENV: 'production' } });
  try {
    const { signIn, session } = await signInCookies(h);
    expect(signIn.length).toBeGreaterThan(0);
    expect(session.length).toBeGreaterThan(0);
    for (const cookie of [...signIn, ...session]) expect(cookie).toMatch(/; Secure(;|$)/);
  } finally {
    await h.close();
  }
});

it('in development over plain http, they are not (so http://localhost works)', async () => {
  const h = await startApiHarness({ config: { NODE_ENV: 'development' } });
  try {
    const { signIn, session } = await signInCookies(h);
    for (const cookie of [...signIn, ...session]) expect(cookie).not.toMatch(/Secure/);
  } finally {
    await h.close();
  }
});
