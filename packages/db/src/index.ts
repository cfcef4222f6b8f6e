export * from './client';
export * from './migrate';
export * from './outbox';
export * from './idempotency';
export * from './errors';
export * from './circuits';
export * from './installation';
export * from './payload';
