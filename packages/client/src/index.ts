import createClient, { type Client, type ClientOptions } from 'openapi-fetch';
import type { components, paths } from './schema';

// @hookline/client: the Hookline API, typed. The types (`paths`,
// `components`) are generated from the API's own OpenAPI document
// (scripts/generate-client.ts); the requests are openapi-fetch's, so every
// path, parameter, body and answer is checked against that document:
//
//   const hookline = createHooklineClient({ baseUrl: 'https://hooks.example.com', apiKey: process.env.HOOKLINE_KEY! });
//   const { data, error } = await hookline.POST('/v1/webhooks', { body: { url, events: ['extraction.job_completed'] } });
//
// `error` is the contract's envelope ({ error: { code, message, details? } }) on a 4xx or 5xx.

export type { components, paths } from './schema';
export type HooklineClient = Client<paths>;

/** Each object of the API by its schema name: `Schemas['Webhook']`, `Schemas['Delivery']` … */
export type Schemas = components['schemas'];
export type ApiError = Schemas['Error'];

export type HooklineClientOptions = Omit<ClientOptions, 'baseUrl'> & {
  /** Where Hookline runs, e.g. https://hooks.example.com (no trailing /v1). */
  baseUrl: string;
} & (
  /** An integrator's API key (hk_live_… / hk_test_…), for /v1. */
  | { apiKey: string; platformToken?: never }
  /** The platform's token, for /internal/v1. */
  | { platformToken: string; apiKey?: never }
);

export function createHooklineClient(options: HooklineClientOptions): HooklineClient {
  const { apiKey, platformToken, baseUrl, headers, ...rest } = options;
  const token = apiKey ?? platformToken;
  return createClient<paths>({
    ...rest,
    baseUrl: baseUrl.replace(/\/+$/, ''),
    headers: { ...(headers as Record<string, string> | undefined), Authorization: `Bearer ${token}` },
  });
}
