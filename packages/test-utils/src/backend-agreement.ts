/**
 * The battery's backend-agreement check on its own: a module's eval outputs and parameter
 * gradients on each backend equal those on the first. Browser-safe (no Node import) and
 * asynchronous in every read, so it runs on webgpu and webgl, whose synchronous reads are slow
 * (webgl) or unavailable (webgpu without an OffscreenCanvas).
 */
import { Module, setBackend, setSeed, tf, type BackendChoice } from '@mie/core';

/** A module that keeps its constructor options as `config`. */
export type ConfigurableModule = Module & { readonly config: object };

/** Arguments for `forward`: tensors, options objects, anything. Built anew for each run. */
export type InputFactory = () => unknown[];

/** Calls a module on its inputs; defaults to `module.forward(...inputs)`. */
export type ModuleCall = (module: ConfigurableModule, inputs: unknown[]) => unknown;

export interface BackendAgreementOptions {
  /** Backends compared, the first being the reference. Default `['cpu', 'wasm']`. */
  backends?: BackendChoice[];
  /** Absolute + relative tolerance of the outputs. Default 1e-5. */
  tolerance?: number;
  /** Absolute + relative tolerance of the gradients. Default 10 x `tolerance`. */
  gradientTolerance?: number;
  call?: ModuleCall;
  /**
   * Compare in training mode (dropout on) instead of eval mode. The global seed is reset to the
   * same value before each forward, so every backend draws the same dropout masks (MIE draws
   * them on the host). Default false.
   */
  training?: boolean;
}

/** The seed set before each forward in training mode. */
const TRAINING_SEED = 20_240_601;

/** What one backend gave against the reference. */
export interface AgreementResult {
  backend: string;
  /** Largest |a - b| over the outputs. */
  outputDifference: number;
  /** Largest |a - b| over the gradients. */
  gradientDifference: number;
  /** Output tensors compared. */
  outputs: number;
  /** Gradients compared. */
  gradients: number;
}

/** A tensor's values read back (asynchronously). */
export interface TensorValues {
  shape: number[];
  dtype: tf.DataType;
  values: tf.TypedArray;
}

/** Every tensor inside a forward output (a tensor, arrays, objects), in a stable order. */
export function collectTensors(value: unknown, out: tf.Tensor[] = []): tf.Tensor[] {
  if (value instanceof tf.Tensor) out.push(value);
  else if (Array.isArray(value)) value.forEach((item) => collectTensors(item, out));
  else if (value && typeof value === 'object' && !(value instanceof Module)) {
    for (const key of Object.keys(value)) collectTensors((value as Record<string, unknown>)[key], out);
  }
  return out;
}

export function fail(module: string, check: string, detail: string): never {
  throw new Error(`runModuleTest(${module}) ${check}: ${detail}`);
}

/** Reads every tensor with `data()` (never a synchronous download). */
export async function readAll(tensors: tf.Tensor[]): Promise<TensorValues[]> {
  return Promise.all(tensors.map(async (t) => ({ shape: t.shape.slice(), dtype: t.dtype, values: (await t.data()) as tf.TypedArray })));
}

/** Largest |a - b| - tolerance * |b| over all elements (<= tol means equal within tolerance), and the largest |a - b|. */
function mismatch(a: tf.TypedArray, b: tf.TypedArray, tol: number): { worst: number; largest: number } {
  let worst = -Infinity;
  let largest = 0;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    const difference = Math.abs(a[i] - b[i]);
    if (!(difference <= largest)) largest = difference; // NaN against a number counts as the largest
    worst = Math.max(worst, difference - tol * Math.abs(b[i]));
    if (Number.isNaN(difference)) worst = Infinity;
  }
  return { worst, largest };
}

/** Throws when `actual` and `expected` differ in count, shape or (beyond `tol`) value; returns the largest difference. */
export function compareValues(name: string, check: string, actual: TensorValues[], expected: TensorValues[], tol: number): number {
  if (actual.length !== expected.length) fail(name, check, `output count ${actual.length} != ${expected.length}`);
  let largest = 0;
  actual.forEach((tensor, i) => {
    if (!tf.util.arraysEqual(tensor.shape, expected[i].shape)) {
      fail(name, check, `output ${i} shape [${tensor.shape}] != [${expected[i].shape}]`);
    }
    const result = mismatch(tensor.values, expected[i].values, tol);
    if (result.worst > tol) fail(name, check, `output ${i} differs by up to ${result.largest} (tolerance ${tol})`);
    largest = Math.max(largest, result.largest);
  });
  return largest;
}

/** The module's output tensors for `inputs`, kept out of the tidy. */
export function forwardTensors(module: ConfigurableModule, inputs: unknown[], call?: ModuleCall): tf.Tensor[] {
  return tf.tidy(() => collectTensors(call ? call(module, inputs) : (module.forward as (...args: unknown[]) => unknown)(...inputs)));
}

/**
 * Gradients of a loss that projects the float outputs on fixed random weights (a plain sum would
 * give zero gradients through normalisations), keyed by variable. The weights come from seeded
 * `randomNormal`, which tfjs computes the same on every backend.
 */
export function parameterGradients(module: ConfigurableModule, inputs: unknown[], variables: tf.Variable[], call?: ModuleCall): Map<tf.Variable, tf.Tensor> {
  if (variables.length === 0) return new Map();
  const { value, grads } = tf.variableGrads(() => {
    const outs = collectTensors(call ? call(module, inputs) : (module.forward as (...a: unknown[]) => unknown)(...inputs));
    const floats = outs.filter((t) => t.dtype === 'float32');
    return floats
      .map((t, i) => tf.sum(tf.mul(t, tf.randomNormal(t.shape, 0, 1, 'float32', 1234 + i))))
      .reduce((a, b) => tf.add(a, b)) as tf.Scalar;
  }, variables);
  value.dispose();
  return new Map(variables.filter((v) => grads[v.name]).map((v) => [v, grads[v.name]]));
}

/** Outputs and gradients of `module` on the active backend, read back and disposed. */
async function outputsAndGradients(
  module: ConfigurableModule,
  inputs: unknown[],
  call: ModuleCall | undefined,
  training: boolean,
): Promise<{ outputs: TensorValues[]; gradients: TensorValues[] }> {
  if (training) setSeed(TRAINING_SEED);
  const outs = forwardTensors(module, inputs, call);
  if (training) setSeed(TRAINING_SEED);
  const grads = [...parameterGradients(module, inputs, module.trainableParameters(), call).values()];
  try {
    return { outputs: await readAll(outs), gradients: await readAll(grads) };
  } finally {
    tf.dispose(outs);
    tf.dispose(grads);
  }
}

/**
 * Compares `module` (in its current mode) on every backend after the first against `reference`, the
 * first backend's outputs and gradients. Each backend must also leave the tensor count as it
 * found it. Leaves the last backend active.
 */
export async function compareBackends(
  module: ConfigurableModule,
  inputs: unknown[],
  reference: { outputs: TensorValues[]; gradients: TensorValues[] },
  options: BackendAgreementOptions & { backends: BackendChoice[] },
): Promise<AgreementResult[]> {
  const name = module.constructor.name;
  const tolerance = options.tolerance ?? 1e-5;
  const gradientTolerance = options.gradientTolerance ?? tolerance * 10;
  const results: AgreementResult[] = [];
  for (const backend of options.backends.slice(1)) {
    const device = await setBackend(backend);
    const before = tf.memory().numTensors;
    const { outputs, gradients } = await outputsAndGradients(module, inputs, options.call, options.training ?? false);
    if (tf.memory().numTensors !== before) fail(name, `${backend} tensor leak`, `${tf.memory().numTensors - before} tensors leaked by forward or gradients`);
    const label = `${options.backends[0]}/${backend}`;
    results.push({
      backend: device.backend,
      outputDifference: compareValues(name, `${label} agreement`, outputs, reference.outputs, tolerance),
      gradientDifference: compareValues(name, `${label} gradient agreement`, gradients, reference.gradients, gradientTolerance),
      outputs: outputs.length,
      gradients: gradients.length,
    });
  }
  return results;
}

/**
 * The backend-agreement check: builds `factory()` on the first backend, computes its eval (or training) outputs
 * on `input()` and the gradients of every trainable parameter there, and requires the same (within
 * the tolerances) on each other backend. Throws an `Error` naming the module, the backends and the
 * difference; resolves to what each backend gave. Restores the active backend and frees all it made.
 */
export async function backendAgreement(factory: () => ConfigurableModule, input: InputFactory, options: BackendAgreementOptions = {}): Promise<AgreementResult[]> {
  const backends = options.backends ?? ['cpu', 'wasm'];
  const initialBackend = tf.getBackend();
  await setBackend(backends[0]);
  const baseline = tf.memory().numTensors;
  const module = factory();
  let inputTensors: tf.Tensor[] = [];
  let results: AgreementResult[];
  try {
    if (options.training) module.train();
    else module.eval();
    const inputs = input();
    inputTensors = [...new Set(collectTensors(inputs))];
    const reference = await outputsAndGradients(module, inputs, options.call, options.training ?? false);
    results = await compareBackends(module, inputs, reference, { ...options, backends });
  } finally {
    tf.dispose(inputTensors);
    module.dispose();
    await setBackend(backends[0]);
    if (initialBackend && initialBackend !== tf.getBackend()) await tf.setBackend(initialBackend);
  }
  const left = tf.memory().numTensors - baseline;
  if (left !== 0) fail(module.constructor.name, 'tensor leak', `${left} tensors remain after the agreement check`);
  return results;
}
