// The worker as a library: `npm run start:worker` (main.ts) and the standalone
// `npm start` process both build it with createWorker.
export { createWorker, type DeliveryWorker, type WorkerConfig, type WorkerDeps } from './worker';
export { createDeliverer, type DeliverDeps, type DeliverOutcome, type DeliverResult, type Deliverer } from './deliver';
export { deliveryBackoffStrategy, RetryLaterError } from './backoff';
export { createEndpointGate, type EndpointGate } from './endpoint-gate';
export { startRelay, type Relay, type RelayDeps } from './relay';
export { startRetentionSweeper, type RetentionDeps, type RetentionSweeper, type SweepResult } from './retention';
export { createSender, type Sender, type SendResult } from './sender';
export { startHealthServer, type HealthServer, type HealthServerOptions } from './health-server';
export { USER_AGENT, VERSION } from './version';
