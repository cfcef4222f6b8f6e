export * from './names';
export * from './jobs';
export * from './connection';
export * from './shards';
export * from './delivery-queue';
export * from './queue-owner';
export * from './redis-probe';
export * from './delivery-lag';
