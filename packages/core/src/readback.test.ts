import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { MieBackendError } from './errors';
import { backendOnHost, hostValues, readSync, synchronousReadsAvailable } from './readback';
import { tf } from './tfjs';

// The webgpu paths themselves (values on the GPU, host values of an unused tensor) run on a real
// WebGPU adapter in @mie/browser-tests; here, the host backends and the refusal's wording.

afterEach(async () => {
  await tf.setBackend('cpu');
});

describe('readback on host backends', () => {
  it.each(['cpu', 'wasm'])('%s: values are on the host and read synchronously', async (backend) => {
    await tf.setBackend(backend);
    const before = tf.memory().numTensors;
    const x = tf.tidy(() => tf.add(tf.tensor1d([1, 2, 3]), 1)); // an op's output, not a JavaScript array
    expect(backendOnHost()).toBe(true);
    expect(synchronousReadsAvailable()).toBe(true);
    expect(Array.from(hostValues(x) ?? [])).toEqual([2, 3, 4]);
    expect(Array.from(readSync(x, 'Caller.method', 'something else'))).toEqual([2, 3, 4]);
    x.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('readback on a backend without synchronous GPU reads', () => {
  // A backend registered as "webgpu" that keeps its values where hostValues cannot see them:
  // what tfjs-backend-webgpu is under Node (no OffscreenCanvas) once a tensor lives on the GPU.
  // (MathBackendCPU warns once, on its first write, that the cpu backend is slow.)
  let warn: jest.SpyInstance;
  beforeAll(() => {
    warn = jest.spyOn(console, 'warn').mockImplementation(() => undefined);
    tf.registerBackend('webgpu', () => new MathBackendCPU(), 0);
  });
  afterAll(() => {
    tf.removeBackend('webgpu');
    warn.mockRestore();
  });

  it('says synchronous reads are unavailable and refuses them naming the caller and the alternative', async () => {
    await tf.setBackend('webgpu');
    const x = tf.tensor1d([1, 2]);
    try {
      expect(backendOnHost()).toBe(false);
      expect(synchronousReadsAvailable()).toBe(false);
      expect(hostValues(x)).toBeNull();
      expect(() => readSync(x, 'Model.toBuffers', 'await model.toBuffersAsync()')).toThrow(MieBackendError);
      expect(() => readSync(x, 'Model.toBuffers', 'await model.toBuffersAsync()')).toThrow(
        /^Model\.toBuffers: reads tensor values synchronously, which the webgpu backend cannot do outside a browser .*; use await model\.toBuffersAsync\(\)\.$/,
      );
    } finally {
      x.dispose();
    }
  });

  it('reads synchronously where an OffscreenCanvas exists (a browser)', async () => {
    await tf.setBackend('webgpu');
    const globals = globalThis as { OffscreenCanvas?: unknown };
    globals.OffscreenCanvas = class {};
    const x = tf.tensor1d([5, 6]);
    try {
      expect(synchronousReadsAvailable()).toBe(true);
      expect(Array.from(readSync(x, 'Model.toBuffers', 'unused'))).toEqual([5, 6]);
    } finally {
      delete globals.OffscreenCanvas;
      x.dispose();
    }
  });
});
