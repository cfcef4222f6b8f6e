/** @jest-config-loader esbuild-register */
import type { Config } from 'jest';

// got 14 and its dependency tree ship ESM only; jest runs CommonJS, so swc
// transforms them too (Jest 30 in CommonJS mode cannot require ESM on Node 20).
const esmOnly = [
  'got', '@sindresorhus/is', 'byte-counter', 'cacheable-lookup', 'cacheable-request', 'get-stream',
  '@sec-ant/readable-stream', 'is-stream', 'mimic-response', 'normalize-url', 'responselike',
  'lowercase-keys', 'decompress-response', 'form-data-encoder', 'p-cancelable', 'keyv', '@keyv/serialize',
  'http-cache-semantics', 'type-fest', 'chunk-data', 'uint8array-extras', 'char-regex', 'defer-to-connect',
  '@szmarczak/http-timer', 'quick-lru', 'http2-wrapper', 'resolve-alpn',
];

const config: Config = {
  testEnvironment: 'node',
  roots: ['<rootDir>/apps', '<rootDir>/packages', '<rootDir>/tests'],
  testMatch: ['**/test/**/*.test.ts', '**/tests/**/*.test.ts'],
  transform: {
    '^.+\\.(t|j|mj)sx?$': ['@swc/jest', { jsc: { target: 'es2022', parser: { syntax: 'typescript' } }, module: { type: 'commonjs' } }],
  },
  transformIgnorePatterns: [`node_modules/(?!(${esmOnly.join('|')})/)`],
  moduleNameMapper: {
    '^@hookline/(domain|config|db|queue|metrics|verify|client|telemetry|cli)$': '<rootDir>/packages/$1/src/index.ts',
    '^@hookline/(api|worker|standalone)$': '<rootDir>/apps/$1/src/index.ts',
  },
  // The compiled build (`npm run build`, each workspace's dist/) is never a test nor a module jest resolves.
  modulePathIgnorePatterns: ['<rootDir>/.data', '<rootDir>/(apps|packages)/[^/]+/dist/'],
  testPathIgnorePatterns: ['/node_modules/', '<rootDir>/(apps|packages)/[^/]+/dist/'],
  testTimeout: 60_000,
  // Test files share the machine's PostgreSQL and Redis (each with its own database and prefix);
  // two at a time keeps a 2-core machine responsive.
  maxWorkers: 2,
  // `npm test` runs with --coverage: a one-line-per-metric summary at the end, failing the run
  // below the floor. Only shipped code counts: not the generated Prisma client, the client's generated
  // types (packages/client/src/schema.ts: types only, no code to run), tests or test support.
  coverageProvider: 'v8',
  collectCoverageFrom: [
    'apps/*/src/**/*.ts',
    'packages/*/src/**/*.ts',
    '!packages/db/src/generated/**',
    '!packages/client/src/schema.ts',
  ],
  coverageReporters: ['text-summary'],
  coverageThreshold: { global: { lines: 88 } },
};

export default config;
