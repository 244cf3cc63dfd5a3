/**
 * The GPU backends of browsers, and of Node through Dawn: WebGPU (`@tensorflow/tfjs-backend-webgpu`)
 * and WebGL (`@tensorflow/tfjs-backend-webgl`), both optional peers. In a browser bundle the page
 * imports the backend package it wants (a bundle holds only what it imports); in Node, MIE loads
 * it, and for WebGPU provides `navigator.gpu` with the optional `webgpu` package (Google's Dawn,
 * which finds the machine's Vulkan driver). A package that is not installed is reported as not
 * installed, never as failing to load.
 */
import { MieBackendError } from './errors';
import { HOST, importOptionalModule } from './host';
import { tf } from './tfjs';

export const WEBGPU_PACKAGE = '@tensorflow/tfjs-backend-webgpu';
export const WEBGL_PACKAGE = '@tensorflow/tfjs-backend-webgl';
/** The npm package that gives Node a WebGPU implementation (Dawn). */
export const NODE_WEBGPU_PACKAGE = 'webgpu';

/** What a GPU backend reports of its adapter (WebGPU) or context (WebGL), as far as it is known. */
export interface GpuInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  /** WebGL only: 1 or 2. */
  webglVersion?: number;
}

interface GpuAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
}
interface GpuAdapter {
  info?: GpuAdapterInfo;
}
interface NavigatorGpu {
  requestAdapter(options?: unknown): Promise<GpuAdapter | null>;
}

function navigatorGpu(): NavigatorGpu | undefined {
  return (globalThis as { navigator?: { gpu?: NavigatorGpu } }).navigator?.gpu;
}

/** `error` says that `name` itself is not installed (not that it failed while loading). */
function notInstalled(error: unknown, name: string): boolean {
  const { code, message } = (error ?? {}) as { code?: string; message?: string };
  return (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && typeof message === 'string' && message.includes(name);
}

/** Gives Node a `navigator.gpu` from the `webgpu` package (once), unless one exists. */
async function provideNodeWebGpu(): Promise<void> {
  if (navigatorGpu()) return;
  let dawn: { create(options: string[]): NavigatorGpu; globals: Record<string, unknown> };
  try {
    dawn = (await importOptionalModule(NODE_WEBGPU_PACKAGE)) as typeof dawn;
  } catch (error) {
    if (notInstalled(error, NODE_WEBGPU_PACKAGE)) {
      throw new MieBackendError(`setBackend: "webgpu" in Node needs the optional package ${NODE_WEBGPU_PACKAGE} (Dawn), which is not installed: npm install ${NODE_WEBGPU_PACKAGE} ${WEBGPU_PACKAGE}.`);
    }
    throw new MieBackendError(`setBackend: ${NODE_WEBGPU_PACKAGE} is installed but failed to load: ${(error as Error)?.message ?? error}`);
  }
  Object.assign(globalThis, dawn.globals);
  const holder = globalThis as unknown as { navigator?: Record<string, unknown> };
  if (holder.navigator === undefined) {
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
  }
  Object.defineProperty(holder.navigator!, 'gpu', { value: dawn.create([]), configurable: true, writable: true });
}

/** Registers the tfjs backend `name` from `pkg` (Node: loads it; a browser: the page must have imported it). */
function registerBackendPackage(name: 'webgpu' | 'webgl', pkg: string, load: (name: string) => unknown): void {
  if (tf.findBackendFactory(name)) return;
  try {
    load(pkg);
  } catch (error) {
    if (notInstalled(error, pkg)) {
      const how = HOST === 'browser' ? `import '${pkg}' in the page (npm install ${pkg})` : `npm install ${pkg}`;
      throw new MieBackendError(`setBackend: "${name}" needs the optional package ${pkg}, which is not installed: ${how}.`);
    }
    throw new MieBackendError(`setBackend: ${pkg} is installed but failed to load: ${(error as Error)?.message ?? error}`);
  }
  if (!tf.findBackendFactory(name)) {
    throw new MieBackendError(
      `setBackend: ${pkg} loaded but did not register the "${name}" backend with the tfjs-core instance MIE uses; install a version that shares @tensorflow/tfjs-core ${tf.version_core} with @mie/core.`,
    );
  }
}

/** Switches to WebGPU; resolves to what is known of the adapter. */
export async function activateWebGpu(load: (name: string) => unknown): Promise<GpuInfo> {
  if (HOST === 'node') await provideNodeWebGpu();
  const gpu = navigatorGpu();
  if (!gpu) throw new MieBackendError('setBackend: "webgpu" needs WebGPU (navigator.gpu), which this runtime does not have.');
  registerBackendPackage('webgpu', WEBGPU_PACKAGE, load);
  const adapter = await gpu.requestAdapter().catch(() => null);
  if (!adapter) throw new MieBackendError('setBackend: "webgpu": navigator.gpu found no GPU adapter (no WebGPU driver for this GPU).');
  if (!(await tf.setBackend('webgpu'))) throw new MieBackendError('setBackend: the webgpu backend failed to initialise.');
  const { vendor, architecture, device, description } = adapter.info ?? {};
  return { vendor, architecture, device, description };
}

/** Switches to WebGL (browsers); resolves to the WebGL version. */
export async function activateWebGl(load: (name: string) => unknown): Promise<GpuInfo> {
  if (HOST === 'node') {
    throw new MieBackendError('setBackend: "webgl" needs a browser (Node has no WebGL); in Node use "webgpu" (with the webgpu package) or "tensorflow-gpu".');
  }
  registerBackendPackage('webgl', WEBGL_PACKAGE, load);
  if (!(await tf.setBackend('webgl'))) throw new MieBackendError('setBackend: the webgl backend failed to initialise (no WebGL context).');
  return { webglVersion: tf.env().getNumber('WEBGL_VERSION') };
}

/** Whether a GPU backend can be tried by `auto` in this runtime without loading anything. */
export function gpuBackendAvailable(name: 'webgpu' | 'webgl'): boolean {
  if (!tf.findBackendFactory(name)) return false;
  return name === 'webgl' || navigatorGpu() !== undefined;
}
