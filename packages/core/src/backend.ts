/**
 * Backend selection (API.md section 5). In Node, `setBackend('auto')` takes
 * `@tensorflow/tfjs-node-gpu` when it is installed and sees a GPU, else `@tensorflow/tfjs-node`,
 * else wasm, else cpu; in a browser it takes webgpu (when the page imported
 * `@tensorflow/tfjs-backend-webgpu` and the browser has an adapter), else webgl (when the page
 * imported `@tensorflow/tfjs-backend-webgl`), else wasm, else cpu. Every backend package but wasm
 * and cpu is an optional peer, loaded only here and only when asked for (gpu-backends.ts).
 */
import type { BackendWasm } from '@tensorflow/tfjs-backend-wasm';
import { MieBackendError, describeValue } from './errors';
import { tf } from './tfjs';
import { loadBlas, type Blas } from './blas';
import { guardWasmAllocations } from './memory';
import { HOST, emitWarning, environmentVariable, loadOptionalModule } from './host';
import { WEBGL_PACKAGE, WEBGPU_PACKAGE, activateWebGl, activateWebGpu, gpuBackendAvailable, type GpuInfo } from './gpu-backends';
import { registerWasmKernels } from './wasm-kernels';
import { gemmKernel, gemmThreadsWanted, loadSimdGemm, setSimdModuleLoaded, simdGemm, startGemmPool, type GemmKernel } from './simd-gemm';
import { installWasmMatMul, setFewRowsKernel, setWasmGemm, wasmGemmName, xnnpackGemm } from './wasm-matmul';
import { prepareWasmThreads, wasmThreadsFromEnvironment } from './wasm-threads';

/** A backend choice accepted by {@link setBackend} and the `MIE_BACKEND` environment variable. */
export type BackendChoice = 'auto' | 'tensorflow-gpu' | 'tensorflow' | 'webgpu' | 'webgl' | 'wasm' | 'cpu';

/** The backend choices. */
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow-gpu', 'tensorflow', 'webgpu', 'webgl', 'wasm', 'cpu'];

/** What {@link getDevice} reports about the active backend. */
export interface DeviceInfo {
  /** The tfjs backend name: `'tensorflow'`, `'webgpu'`, `'webgl'`, `'wasm'` or `'cpu'`. */
  backend: string;
  /** Where tensors are computed. */
  kind: 'gpu' | 'cpu';
  /** The choice that selected it (`'auto'` when picked automatically). */
  requested: BackendChoice;
  /** The npm package that provides the backend. */
  package: string;
  /** Whether the wasm backend runs SIMD code (wasm only). */
  simd?: boolean;
  /**
   * Threads the wasm backend's matmuls compute with (wasm only): on the `'simd'` path the GEMM's
   * thread pool, the calling thread included (`MIE_THREADS`, default every core this process may
   * use); on the `'xnnpack'` path tfjs's own threads (`MIE_WASM_THREADS`); on `'blas'` the
   * same pool's, which computes the dense layers' products of at most four rows there (cached
   * decoding); the BLAS library's own threads are not counted.
   */
  threads?: number;
  /** The SIMD GEMM's kernel (wasm `'simd'` path only): `'relaxed-simd'` (fused multiply-add) or `'simd'`. */
  gemmKernel?: GemmKernel;
  /**
   * The wasm matmul path (wasm only): `'blas'` (system BLAS through koffi, see `blasLibrary`),
   * `'simd'` (MIE's WebAssembly SIMD GEMM on the backend's heap: the default without BLAS),
   * `'xnnpack'` (every matmul routed to XNNPACK: with `MIE_SIMD_GEMM=0`) or `'stock'`
   * (`MIE_WASM_MATMUL=stock`).
   */
  matmul?: 'blas' | 'simd' | 'xnnpack' | 'stock';
  /** The BLAS library the `'blas'` matmul path calls. */
  blasLibrary?: string;
  /** What is known of the GPU (webgpu: the adapter's vendor, architecture, device, description; webgl: the version). */
  gpu?: GpuInfo;
}

/** Loads an optional package; replaced in tests to stub the tfjs-node packages. */
export type ModuleLoader = (name: string) => unknown;

const GPU_PACKAGE = '@tensorflow/tfjs-node-gpu';
const NODE_PACKAGE = '@tensorflow/tfjs-node';

// A plain require (host.ts): the optional peers are CommonJS packages resolved from the user's install.
let loadModule: ModuleLoader = loadOptionalModule;
let device: DeviceInfo | null = null;
let pending: Promise<DeviceInfo> | null = null;

registerWasmKernels();
installWasmMatMul();

let blas: Blas | null | undefined;

/**
 * Picks the wasm GEMM: a system BLAS when one loads and passes its self-check; else MIE's SIMD
 * GEMM when it instantiates on the backend's memory and passes its self-check (on the threaded
 * build's shared heap too); else XNNPACK.
 */
function selectWasmGemm(): boolean {
  if (blas === undefined) blas = loadBlas();
  // The SIMD module is loaded beside a BLAS too: its few-rows kernel (cached decoding) beats a
  // BLAS call of one row and XNNPACK's packed path.
  const simdModule = environmentVariable('MIE_SIMD_GEMM') !== '0' && loadSimdGemm(tf.backend() as BackendWasm);
  if (blas) setWasmGemm('blas', blas.gemm);
  else if (simdModule) setWasmGemm('simd', simdGemm);
  else setWasmGemm('xnnpack', xnnpackGemm);
  setFewRowsKernel(simdModule);
  setSimdModuleLoaded(simdModule);
  return simdModule;
}

/** Replaces the loader of optional packages (for tests); returns the previous one. */
export function setModuleLoader(loader: ModuleLoader): ModuleLoader {
  const previous = loadModule;
  loadModule = loader;
  return previous;
}

/** True when `error` says that `name` itself (not one of its dependencies) is not installed. */
function isNotInstalled(error: unknown, name: string): boolean {
  const e = error as { code?: string; message?: string };
  return e?.code === 'MODULE_NOT_FOUND' && typeof e.message === 'string' && e.message.includes(`'${name}'`);
}

/** Loads an optional package: `false` when it is not installed, throws when it is installed but broken. */
function tryLoad(name: string): boolean {
  try {
    loadModule(name);
    return true;
  } catch (error) {
    if (isNotInstalled(error, name)) return false;
    throw new MieBackendError(`setBackend: ${name} is installed but failed to load: ${(error as Error)?.message ?? error}`);
  }
}

/** Switches tfjs to the `tensorflow` backend registered by a tfjs-node package. */
async function activateTensorflow(pkg: string): Promise<boolean> {
  if (!tf.findBackendFactory('tensorflow')) {
    throw new MieBackendError(
      `setBackend: ${pkg} loaded but did not register the "tensorflow" backend with the tfjs-core instance MIE uses. ` +
        `Install a version that shares @tensorflow/tfjs-core ${tf.version_core} with @mie/core (only one tfjs-core may be installed).`,
    );
  }
  if (!(await tf.setBackend('tensorflow'))) {
    throw new MieBackendError(`setBackend: the "tensorflow" backend from ${pkg} failed to initialise.`);
  }
  const binding = (tf.findBackend('tensorflow') as { binding?: { isUsingGpuDevice?: () => boolean } } | null)?.binding;
  return pkg === GPU_PACKAGE && binding?.isUsingGpuDevice?.() === true;
}

async function activateWasm(requested: BackendChoice): Promise<DeviceInfo> {
  // Threads are fixed when the module first initialises; later switches back to wasm reuse it.
  // (`tf.findBackend` would initialise it: look in the registry instead.)
  const initialisedBefore = 'wasm' in (tf.engine() as unknown as { registry: Record<string, unknown> }).registry;
  const wantThreads = initialisedBefore ? 1 : wasmThreadsFromEnvironment();
  const finishThreads = wantThreads > 1 ? prepareWasmThreads(wantThreads) : null;
  let initialised: boolean;
  try {
    initialised = await tf.setBackend('wasm');
  } finally {
    finishThreads?.();
  }
  if (!initialised) throw new MieBackendError('setBackend: the wasm backend failed to initialise.');
  guardWasmAllocations(tf.backend());
  const simd = Boolean(await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT'));
  const backendThreads = (tf.backend() as { wasm?: { tfjs?: { getThreadsCount?: () => number } } }).wasm?.tfjs?.getThreadsCount?.() ?? 1;
  const wantedThreads = gemmThreadsWanted(); // checks MIE_THREADS on every path
  const simdModule = selectWasmGemm();
  const matmul = environmentVariable('MIE_WASM_MATMUL') === 'stock' ? 'stock' : (wasmGemmName() as 'blas' | 'simd' | 'xnnpack');
  const simdPath = matmul === 'simd';
  // The pool: the SIMD GEMM's on its path; beside a BLAS, the few-rows kernel's only.
  const pooled = simdPath || (matmul === 'blas' && simdModule);
  const threads = pooled ? await startGemmPool(tf.backend() as BackendWasm, wantedThreads) : matmul === 'blas' ? 1 : backendThreads;
  return {
    backend: 'wasm',
    kind: 'cpu',
    requested,
    package: '@tensorflow/tfjs-backend-wasm',
    simd,
    threads,
    ...(simdPath ? { gemmKernel: gemmKernel() } : {}),
    matmul,
    ...(matmul === 'blas' && blas ? { blasLibrary: blas.library } : {}),
  };
}

async function activateCpu(requested: BackendChoice): Promise<DeviceInfo> {
  if (!(await tf.setBackend('cpu'))) throw new MieBackendError('setBackend: the cpu backend failed to initialise.');
  // The cpu backend's first write prints advice to install tfjs-node; MIE chose its backend already.
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
  return { backend: 'cpu', kind: 'cpu', requested, package: '@tensorflow/tfjs-backend-cpu' };
}

async function gpuDevice(name: 'webgpu' | 'webgl', requested: BackendChoice): Promise<DeviceInfo> {
  const gpu = name === 'webgpu' ? await activateWebGpu((pkg) => loadModule(pkg)) : await activateWebGl((pkg) => loadModule(pkg));
  return { backend: name, kind: 'gpu', requested, package: name === 'webgpu' ? WEBGPU_PACKAGE : WEBGL_PACKAGE, gpu };
}

/** `auto` in a browser: the GPU backends the page imported, then wasm, then cpu. */
async function selectInBrowser(requested: BackendChoice): Promise<DeviceInfo> {
  for (const name of ['webgpu', 'webgl'] as const) {
    if (!gpuBackendAvailable(name)) continue;
    try {
      return await gpuDevice(name, requested);
    } catch {
      // No adapter, no context: the next one.
    }
  }
  try {
    return await activateWasm(requested);
  } catch (error) {
    emitWarning(`MIE: the wasm backend failed (${(error as Error).message}); falling back to cpu.`);
    return activateCpu(requested);
  }
}

async function select(choice: BackendChoice): Promise<DeviceInfo> {
  switch (choice) {
    case 'cpu':
      return activateCpu(choice);
    case 'wasm':
      return activateWasm(choice);
    case 'webgpu':
    case 'webgl':
      return gpuDevice(choice, choice);
    case 'tensorflow-gpu': {
      if (!tryLoad(GPU_PACKAGE)) {
        throw new MieBackendError(`setBackend: "tensorflow-gpu" needs the optional package ${GPU_PACKAGE}, which is not installed.`);
      }
      if (!(await activateTensorflow(GPU_PACKAGE))) {
        throw new MieBackendError(`setBackend: ${GPU_PACKAGE} is installed but sees no GPU (check the CUDA and cuDNN libraries).`);
      }
      return { backend: 'tensorflow', kind: 'gpu', requested: choice, package: GPU_PACKAGE };
    }
    case 'tensorflow': {
      // Either package provides the native CPU backend; the GPU build runs on the CPU when it sees no GPU.
      const pkg = tryLoad(NODE_PACKAGE) ? NODE_PACKAGE : tryLoad(GPU_PACKAGE) ? GPU_PACKAGE : null;
      if (!pkg) {
        throw new MieBackendError(`setBackend: "tensorflow" needs the optional package ${NODE_PACKAGE} (or ${GPU_PACKAGE}), which is not installed.`);
      }
      const gpu = await activateTensorflow(pkg);
      return { backend: 'tensorflow', kind: gpu ? 'gpu' : 'cpu', requested: choice, package: pkg };
    }
    case 'auto': {
      if (HOST === 'browser') return selectInBrowser(choice);
      // Only one tfjs-node package may be loaded per process: both register "tensorflow".
      const pkg = tryLoad(GPU_PACKAGE) ? GPU_PACKAGE : tryLoad(NODE_PACKAGE) ? NODE_PACKAGE : null;
      if (pkg) {
        const gpu = await activateTensorflow(pkg);
        return { backend: 'tensorflow', kind: gpu ? 'gpu' : 'cpu', requested: choice, package: pkg };
      }
      try {
        return await activateWasm(choice);
      } catch (error) {
        emitWarning(`MIE: the wasm backend failed (${(error as Error).message}); falling back to cpu.`);
        return activateCpu(choice);
      }
    }
  }
}

/** Checks a backend choice, naming where it came from. */
function parseChoice(value: unknown, source: string): BackendChoice {
  if (typeof value === 'string' && (BACKEND_CHOICES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new MieBackendError(`setBackend: ${source} must be one of ${BACKEND_CHOICES.join(', ')}. Received: ${describeValue(value)}.`);
}

/** The backend asked for by the `MIE_BACKEND` environment variable, or `'auto'`. */
export function backendFromEnvironment(): BackendChoice {
  const value = environmentVariable('MIE_BACKEND');
  return value === undefined || value === '' ? 'auto' : parseChoice(value, 'the MIE_BACKEND environment variable');
}

/**
 * Selects the backend every MIE module computes on and resolves to its description.
 * Without an argument, uses `MIE_BACKEND` or `'auto'`. Tensors created before a switch move
 * to the new backend when next read.
 */
export async function setBackend(choice?: BackendChoice): Promise<DeviceInfo> {
  const parsed = choice === undefined ? backendFromEnvironment() : parseChoice(choice, 'the backend');
  const run = (pending ?? Promise.resolve()).catch(() => undefined).then(() => select(parsed));
  pending = run;
  try {
    device = await run;
    return { ...device };
  } finally {
    if (pending === run) pending = null;
  }
}

/**
 * Resolves once a backend is active, selecting the default one (`MIE_BACKEND` or `'auto'`)
 * when none has been chosen yet. Await it before building models.
 */
export async function ready(): Promise<DeviceInfo> {
  if (pending) await pending.catch(() => undefined);
  if (device && tf.getBackend() === device.backend) return { ...device };
  return setBackend();
}

/** Describes the active backend. Throws a `MieBackendError` when none is active yet. */
export function getDevice(): DeviceInfo {
  if (!device || tf.getBackend() !== device.backend) {
    const name = tf.engine().backendName;
    if (name) {
      // A backend chosen directly through tf.setBackend: describe it as well as we can.
      const packages: Record<string, string> = {
        wasm: '@tensorflow/tfjs-backend-wasm',
        cpu: '@tensorflow/tfjs-backend-cpu',
        webgpu: WEBGPU_PACKAGE,
        webgl: WEBGL_PACKAGE,
      };
      const known = name in packages;
      return {
        backend: name,
        kind: name === 'webgpu' || name === 'webgl' ? 'gpu' : 'cpu',
        requested: known ? (name as BackendChoice) : 'auto',
        package: packages[name] ?? `tfjs backend "${name}"`,
      };
    }
    throw new MieBackendError('getDevice: no backend is active yet. Call `await ready()` or `await setBackend(...)` first.');
  }
  return { ...device };
}
