// The reliability suite runs twice: on wasm (the default backend users get) and on cpu. Each
// project sets MIE_RELIABILITY_BACKEND for its test files (read by `testBackend()` in helpers.ts).
// determinism.test.ts compares the two backends itself, so it runs once; large-checkpoints.test.ts
// runs on cpu only (a 2.4 GB model and its file do not fit in the wasm backend's 4 GiB heap).
const preset = require('../../jest.preset.js');

/** @type {import('jest').Config} */
module.exports = {
  projects: ['wasm', 'cpu'].map((backend) => ({
    ...preset,
    displayName: backend,
    rootDir: __dirname,
    setupFiles: [`<rootDir>/fixtures/backend-${backend}.js`],
    testPathIgnorePatterns: ['/node_modules/', backend === 'cpu' ? 'determinism\\.test\\.ts$' : 'large-checkpoints\\.test\\.ts$'],
  })),
  testTimeout: preset.testTimeout,
};
