/**
 * The one TensorFlow.js instance of the whole library. Every MIE package, example and test
 * reaches tfjs only through this module (`import { tf } from '@mie/core'`), so there is exactly
 * one engine, one kernel registry and one set of variables per process.
 *
 * MIE depends on tfjs-core and the two CPU backends only (not the `@tensorflow/tfjs` umbrella,
 * whose layers, converter, data and webgl packages MIE does not use: 150 MB of a user's install).
 * tfjs-core registers no gradients by itself; register-gradients-node.ts registers them (browser
 * bundles: register-gradients-browser.ts, the module tfjs's custom-bundle guide imports). The GPU
 * backends are optional peers, loaded by `setBackend` (see backend.ts).
 */
// tfjs-core first: the gradients' copy of the Tensor class must find tfjs-core's already
// registered as the global one (every tensor is then a tfjs-core Tensor).
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import './register-gradients-node';

export { tf };
