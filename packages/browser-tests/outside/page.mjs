// The browser entry of the outside project: the page imports the GPU backends it wants to offer.
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { runChecks } from './checks.mjs';

globalThis.mieRun = (backend, modelUrl) => runChecks(backend, new URL(modelUrl, location.href).href, { indexedDb: true });
globalThis.mieReady = true;
