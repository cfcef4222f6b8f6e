import { listSessions, triggerSession, type Attempt, type Credentials } from './api';

// `hookline trigger <event>`: a test event of that type to the listening
// session (the newest one connected, unless --session names one), tried once.

export async function trigger(creds: Credentials, event: string, sessionId?: string): Promise<Attempt> {
  let id = sessionId;
  if (!id) {
    const { data } = await listSessions(creds);
    id = data.find((session) => session.connected)?.id;
    if (!id) throw new Error('no listening session for this API key\'s account: start `hookline listen --forward-to <url>` first');
  }
  return (await triggerSession(creds, id, event)).attempt;
}
