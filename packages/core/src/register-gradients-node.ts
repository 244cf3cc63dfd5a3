/**
 * Registers tfjs's gradients in Node: the CommonJS bundle of tfjs-core's register_all_gradients
 * that `scripts/bundle-gradients.mjs` writes (see there why). The same relative path works from
 * src/ (tests) and dist/ (the package). Browser bundles get register-gradients-browser.ts instead
 * (package.json "browser").
 */
// eslint-disable-next-line @typescript-eslint/no-require-imports
require('../gradients/register-gradients.js');
