// The few Hookline API calls the tool makes (docs/listen.md), with fetch.
// This package ships alone (npm pack), so it depends on no other workspace.

export type Credentials = { url: string; apiKey: string };

export type Session = { id: string; events: string[]; connected: boolean; created_at: string };

export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

export async function call<T>(creds: Credentials, method: string, path: string, body?: unknown): Promise<T> {
  let res: Response;
  try {
    res = await fetch(new URL(path, creds.url), {
      method,
      headers: { Authorization: `Bearer ${creds.apiKey}`, ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  } catch (err) {
    throw new ApiError(0, 'UNREACHABLE', `cannot reach Hookline at ${creds.url}: ${(err as Error).cause instanceof Error ? ((err as Error).cause as Error).message : (err as Error).message}`);
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  if (!res.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiError(res.status, error?.code ?? 'HTTP_ERROR', error?.message ?? `${method} ${path}: HTTP ${res.status}`);
  }
  return parsed as T;
}

export const createSession = (creds: Credentials, events: string[] | undefined) =>
  call<{ session: Session; signing_secret: string }>(creds, 'POST', '/v1/listen/sessions', events ? { events } : {});

export const listSessions = (creds: Credentials) => call<{ data: Session[] }>(creds, 'GET', '/v1/listen/sessions');

export const endSession = (creds: Credentials, id: string) => call<void>(creds, 'DELETE', `/v1/listen/sessions/${encodeURIComponent(id)}`);

export type Attempt = { id: string; delivery_id: string; status: string; response_status: number | null; error: string | null; duration_ms: number };

export const triggerSession = (creds: Credentials, id: string, event: string) =>
  call<{ attempt: Attempt }>(creds, 'POST', `/v1/listen/sessions/${encodeURIComponent(id)}/trigger`, { event });

/** The session's WebSocket URL (ws:// for http://, wss:// for https://). */
export function connectUrl(creds: Credentials, id: string): string {
  const url = new URL(`/v1/listen/sessions/${encodeURIComponent(id)}/connect`, creds.url);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}
