export * from './names';
export * from './jobs';
export * from './connection';
export * from './delivery-queue';
export * from './redis-probe';
