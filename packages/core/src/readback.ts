/**
 * Reading tensor values back to JavaScript without stalling or breaking a GPU backend.
 *
 * On cpu, wasm and tensorflow a tensor's values live in host memory and `dataSync()` is a copy.
 * On webgl and webgpu it is a GPU download that stalls the pipeline, and tfjs-backend-webgpu
 * implements it by drawing the buffer into an `OffscreenCanvas` and reading the canvas back
 * through the browser's compositor: under Node (Dawn) a synchronous read of a tensor held on the
 * GPU is impossible, and in a browser it is slow and needs a compositor that can share WebGPU
 * canvases (Chromium on SwiftShader without a Vulkan driver returned zeros, then lost the device). So MIE checks inputs on values the
 * caller already has ({@link hostValues}: a tensor built from a JavaScript array stays on the host
 * until an op first uses it), does the other checks inside the kernels, reads asynchronously
 * where a public path is already asynchronous, and leaves {@link readSync} to the few synchronous
 * public calls that must read (`toBuffers`, `clipGradNorm`, finite checks), which then say what to
 * call instead.
 */
import { MieBackendError } from './errors';
import { tf } from './tfjs';

type HostData = { values?: tf.backend_util.BackendValues | null } | undefined;

/** The tfjs backends whose tensors live in host memory. */
const HOST_BACKENDS = new Set(['cpu', 'wasm', 'tensorflow']);

/** Whether the active backend keeps tensor values in host memory (cpu, wasm, tensorflow). */
export function backendOnHost(): boolean {
  return HOST_BACKENDS.has(tf.getBackend());
}

/**
 * Whether `dataSync()` works on the active backend for a tensor held on the device: everywhere but
 * webgpu without an `OffscreenCanvas` (webgpu under Node).
 */
export function synchronousReadsAvailable(): boolean {
  return tf.getBackend() !== 'webgpu' || typeof (globalThis as { OffscreenCanvas?: unknown }).OffscreenCanvas === 'function';
}

/**
 * The values of `tensor` if they can be had without a GPU download, else null: always on cpu,
 * wasm and tensorflow; on webgl and webgpu while the tensor is still on the host (built from
 * JavaScript values and not yet used by an op, or already read back).
 */
export function hostValues(tensor: tf.Tensor): tf.TypedArray | null {
  const backendName = tf.engine().backendName;
  if (HOST_BACKENDS.has(backendName)) return tensor.dataSync();
  if (tensor.dtype === 'string') return null;
  // tfjs-backend-webgpu keeps `tensorMap`, tfjs-backend-webgl `texData`: DataStorages whose
  // entries hold `values` until the data is uploaded.
  const backend = tf.engine().backend as unknown as { tensorMap?: { get(id: object): HostData }; texData?: { get(id: object): HostData } };
  const storage = backendName === 'webgpu' ? backend.tensorMap : backendName === 'webgl' ? backend.texData : undefined;
  let values: tf.backend_util.BackendValues | null | undefined;
  try {
    values = storage?.get(tensor.dataId)?.values;
  } catch {
    return null; // a tensor of another backend, moved on first read
  }
  if (values == null || !ArrayBuffer.isView(values)) return null;
  // The backend's own buffer: hand out what dataSync() would.
  return tensor.dataSync();
}

/**
 * `tensor.dataSync()` where the backend can do it; on webgpu under Node (no synchronous GPU
 * read), a `MieBackendError` naming `caller` and the asynchronous call to use instead.
 */
export function readSync(tensor: tf.Tensor, caller: string, instead: string): tf.TypedArray {
  const values = hostValues(tensor);
  if (values) return values;
  if (!synchronousReadsAvailable()) {
    throw new MieBackendError(
      `${caller}: reads tensor values synchronously, which the webgpu backend cannot do outside a browser (tfjs reads WebGPU buffers synchronously through an OffscreenCanvas); use ${instead}.`,
    );
  }
  return tensor.dataSync();
}
