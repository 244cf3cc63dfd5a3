// Shared Jest settings for every package: ts-jest compiles TypeScript (type checking is
// `pnpm typecheck`'s job, so tests transpile only), and sibling packages resolve to their
// source through the "@mie/source" export condition, so a test never sees a stale dist/.
// Several test processes share two cores under Turborepo: OpenBLAS's worker threads, and the
// SIMD GEMM's pool, would spin against each other (the library defaults for users stay every
// core). The tests of the GEMM pool start it themselves.
process.env.OPENBLAS_NUM_THREADS ??= '1';
process.env.MIE_THREADS ??= '1';

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  testEnvironmentOptions: {
    customExportConditions: ['@mie/source', 'node', 'require', 'default'],
  },
  roots: ['<rootDir>/src'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: '<rootDir>/tsconfig.json', diagnostics: false }],
  },
  moduleFileExtensions: ['ts', 'js', 'json'],
  testTimeout: 60000,
};
