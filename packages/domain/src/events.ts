// The event catalog (docs/api.md#events). Names are part of the public API.
export const EVENT_TYPES = [
  { name: 'extraction.document_completed', source: 'api', description: 'One document of an extraction reached completed or failed.' },
  { name: 'extraction.job_completed', source: 'api', description: 'Every document of an extraction is terminal (sent once per extraction).' },
  { name: 'batch.completed', source: 'dashboard', description: 'The extraction ended with every document completed.' },
  { name: 'batch.failed', source: 'dashboard', description: 'The extraction ended with every document failed.' },
  { name: 'batch.partial', source: 'dashboard', description: 'The extraction ended with some documents completed and some failed.' },
  { name: 'quota.warning', source: 'api', description: 'Usage reached 80% of the monthly quota.' },
  { name: 'quota.exceeded', source: 'api', description: 'Usage passed the monthly quota.' },
  // Operational events: Hookline tells an account about its own webhooks. It
  // writes them itself (apps/worker/src/deliver/record.ts); the platform cannot publish them.
  { name: 'webhook.failing', source: 'api', description: 'Another webhook of the account became failing (its last delivery used up its retries).' },
  { name: 'webhook.disabled', source: 'api', description: 'Another webhook of the account was disabled by the service (gone or failing_too_long).' },
  { name: 'delivery.exhausted', source: 'api', description: 'A delivery to another webhook of the account ended failed, its retries spent.' },
] as const;

export type EventName = (typeof EVENT_TYPES)[number]['name'];
export const EVENT_NAMES = EVENT_TYPES.map((e) => e.name) as [EventName, ...EventName[]];
export const API_EVENT_NAMES = EVENT_TYPES.filter((e) => e.source === 'api').map((e) => e.name) as [EventName, ...EventName[]];
export const DASHBOARD_EVENT_NAMES = EVENT_TYPES.filter((e) => e.source === 'dashboard').map((e) => e.name) as EventName[];

export const PLANS = ['free', 'pro', 'enterprise'] as const;
export type Plan = (typeof PLANS)[number];
export const planAllowsWebhooks = (plan: string) => plan === 'pro' || plan === 'enterprise';
