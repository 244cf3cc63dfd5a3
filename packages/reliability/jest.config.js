// The reliability suite runs twice: on wasm (the default backend users get) and on cpu. Each
// project sets MIE_RELIABILITY_BACKEND for its test files (read by `testBackend()` in helpers.ts).
// determinism.test.ts compares the two backends itself, so it runs once.
const preset = require('../../jest.preset.js');

/** @type {import('jest').Config} */
module.exports = {
  projects: ['wasm', 'cpu'].map((backend) => ({
    ...preset,
    displayName: backend,
    rootDir: __dirname,
    setupFiles: [`<rootDir>/fixtures/backend-${backend}.js`],
    testPathIgnorePatterns: backend === 'cpu' ? ['/node_modules/', 'determinism\\.test\\.ts$'] : ['/node_modules/'],
  })),
  testTimeout: preset.testTimeout,
};
