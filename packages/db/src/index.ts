export * from './client';
export * from './migrate';
export * from './outbox';
export * from './errors';
export * from './circuits';
