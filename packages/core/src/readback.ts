/**
 * Reading tensor values back to JavaScript without stalling or breaking a GPU backend.
 *
 * On cpu, wasm and tensorflow a tensor's values live in host memory and `dataSync()` is a copy.
 * On webgl and webgpu it is a GPU download that stalls the pipeline. tfjs-backend-webgpu can do it
 * synchronously only by drawing the buffer into an `OffscreenCanvas` and reading the canvas back
 * through the browser's compositor: impossible under Node (no `OffscreenCanvas`), and in Chromium
 * on a software GPU it failed to create the canvas's shared image and lost the GPU device, after
 * which every WebGPU call of the page fails. So MIE never reads a webgpu tensor synchronously. It
 * checks inputs on values the caller already has ({@link hostValues}: a tensor built from a
 * JavaScript array stays on the host until an op first uses it, and one read back with `data()`
 * keeps its values there), does the other checks inside the kernels, reads asynchronously where a
 * public path is already asynchronous, and leaves {@link readSync} to the few synchronous public
 * calls that must read (`toBuffers`, `clipGradNorm`, finite checks), which on webgpu say what to
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
 * Whether MIE reads a tensor held on the device synchronously on the active backend: everywhere
 * but webgpu (see the module comment).
 */
export function synchronousReadsAvailable(): boolean {
  return tf.getBackend() !== 'webgpu';
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
 * The values of `tensor`, synchronously: its host values, else `dataSync()` on backends but
 * webgpu; on webgpu (values only on the GPU), a `MieBackendError` naming `caller` and the
 * asynchronous call to use instead.
 */
export function readSync(tensor: tf.Tensor, caller: string, instead: string): tf.TypedArray {
  const values = hostValues(tensor);
  if (values) return values;
  if (!synchronousReadsAvailable()) {
    throw new MieBackendError(
      `${caller}: reads tensor values synchronously, which MIE does not do on the webgpu backend (tfjs can only draw the GPU buffer into an OffscreenCanvas and read that back: impossible in Node, and it can lose the GPU device in a browser); use ${instead}.`,
    );
  }
  return tensor.dataSync();
}
