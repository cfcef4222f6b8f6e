export * from './env';
export * from './logger';
export * from './dev-secrets';
export * from './signals';
