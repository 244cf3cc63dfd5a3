/**
 * The one TensorFlow.js instance of the whole library. Every MIE package, example and test
 * reaches tfjs only through this module (`import { tf } from '@mie/core'`), so there is exactly
 * one engine, one kernel registry and one set of variables per process.
 */

// tfjs-core alone registers no gradients: the @tensorflow/tfjs package registers all of them
// (and the cpu backend). The wasm backend registers itself on import; it initialises lazily.
import '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import * as tf from '@tensorflow/tfjs-core';

export { tf };
