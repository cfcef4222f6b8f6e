export { createApp, listenHubOf } from './app';
export type { ApiDeps } from './deps';
export { createHttpServer, serveUntilSignal } from './serve';
// For `npm start`'s demo account: the platform API's own account and key writers, and its sign-in link.
export { createAccount, createApiKey } from './services/accounts';
export { createSignInLink, SIGN_IN_LINK_TTL_SECONDS } from './dashboard/sign-in-link';
