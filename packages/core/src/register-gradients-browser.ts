/** Registers tfjs's gradients in a browser bundle: the ES module itself (see register-gradients-node.ts). */
// The one deep import: tfjs-core exports its gradients from no public entry point, and this module
// is what the @tensorflow/tfjs umbrella (and tfjs's custom-bundle guide) imports for them.
// eslint-disable-next-line no-restricted-imports
import '@tensorflow/tfjs-core/dist/register_all_gradients';
