export { createApp } from './app';
export type { ApiDeps } from './deps';
export { serveUntilSignal } from './serve';
