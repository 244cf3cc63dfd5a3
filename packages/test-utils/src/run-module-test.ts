/**
 * The shared test battery every MIE module runs (after keras-hub's `run_layer_test`):
 * config round trip, save/load round trip with equal outputs, parameter count, a non-zero finite
 * gradient for every parameter, no leaked tensors, and cpu/wasm agreement.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as fsp from 'node:fs/promises';
import { BaseModel, MieConfigError, Module, readSafetensors, setBackend, stateLayout, tf, writeSafetensors, type BackendChoice } from '@mie/core';

/** A module that keeps its constructor options as `config`. */
export type ConfigurableModule = Module & { readonly config: object };

/** Arguments for `forward`: tensors, options objects, anything. Built anew for each backend. */
export type InputFactory = () => unknown[];

export interface ModuleTestOptions {
  /** Expected `countParameters({ trainableOnly: false })`, e.g. the PyTorch count. */
  expectedParameterCount?: number;
  /** Absolute + relative tolerance of the cpu/wasm comparison. Default 1e-5. */
  tolerance?: number;
  /** Backends compared. Default `['cpu', 'wasm']`. */
  backends?: BackendChoice[];
  /** Parameters allowed to get a zero gradient for these inputs (dotted names). */
  allowZeroGradient?: string[];
  /** Calls the module; defaults to `module.forward(...inputs)`. */
  call?: (module: ConfigurableModule, inputs: unknown[]) => unknown;
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

function fail(module: string, check: string, detail: string): never {
  throw new Error(`runModuleTest(${module}) ${check}: ${detail}`);
}

/** Largest |a - b| - tolerance * |b| over all elements (<= tol means equal within tolerance). */
function mismatch(a: Float32Array | Int32Array | Uint8Array, b: Float32Array | Int32Array | Uint8Array, tol: number): number {
  let worst = -Infinity;
  for (let i = 0; i < a.length; i++) {
    if (Number.isNaN(a[i]) && Number.isNaN(b[i])) continue;
    worst = Math.max(worst, Math.abs(a[i] - b[i]) - tol * Math.abs(b[i]));
  }
  return worst;
}

function compareOutputs(name: string, check: string, actual: tf.Tensor[], expected: tf.Tensor[], tol: number): void {
  if (actual.length !== expected.length) fail(name, check, `output count ${actual.length} != ${expected.length}`);
  actual.forEach((tensor, i) => {
    if (!tf.util.arraysEqual(tensor.shape, expected[i].shape)) {
      fail(name, check, `output ${i} shape [${tensor.shape}] != [${expected[i].shape}]`);
    }
    const worst = mismatch(tensor.dataSync(), expected[i].dataSync(), tol);
    if (worst > tol) fail(name, check, `output ${i} differs by up to ${worst + tol} (tolerance ${tol})`);
  });
}

function runForward(module: ConfigurableModule, inputs: unknown[], options: ModuleTestOptions): tf.Tensor[] {
  return tf.tidy(() => {
    const output = options.call ? options.call(module, inputs) : (module.forward as (...args: unknown[]) => unknown)(...inputs);
    return collectTensors(output);
  });
}

/** Builds a second instance from `config`, with the same weights, through safetensors bytes. */
function rebuild(module: ConfigurableModule): ConfigurableModule {
  const Ctor = module.constructor as new (config: object) => ConfigurableModule;
  const clone = new Ctor(module.config);
  const { tensors } = readSafetensors(writeSafetensors(module.stateDict()));
  clone.loadStateDict(tensors);
  tf.dispose(Object.values(tensors));
  return clone;
}

/**
 * Gradients of a loss that projects the float outputs on fixed random weights (a plain sum would
 * give zero gradients through normalisations), keyed by variable.
 */
function gradients(
  module: ConfigurableModule,
  inputs: unknown[],
  options: ModuleTestOptions,
  variables: tf.Variable[],
): Map<tf.Variable, tf.Tensor> {
  const { value, grads } = tf.variableGrads(() => {
    const outs = collectTensors(options.call ? options.call(module, inputs) : (module.forward as (...a: unknown[]) => unknown)(...inputs));
    const floats = outs.filter((t) => t.dtype === 'float32');
    return floats
      .map((t, i) => tf.sum(tf.mul(t, tf.randomNormal(t.shape, 0, 1, 'float32', 1234 + i))))
      .reduce((a, b) => tf.add(a, b)) as tf.Scalar;
  }, variables);
  value.dispose();
  return new Map(variables.filter((v) => grads[v.name]).map((v) => [v, grads[v.name]]));
}

/**
 * Runs the battery on `factory()` with `forward(...input())`, throwing an `Error` that names the
 * module and the failed check. Restores the active backend afterwards.
 */
export async function runModuleTest(
  factory: () => ConfigurableModule,
  input: InputFactory,
  options: ModuleTestOptions = {},
): Promise<void> {
  const tolerance = options.tolerance ?? 1e-5;
  const backends = options.backends ?? ['cpu', 'wasm'];
  const initialBackend = tf.getBackend();
  await setBackend(backends[0]);
  const baseline = tf.memory().numTensors;
  const module = factory();
  const name = module.constructor.name;
  const moduleTensors = tf.memory().numTensors;
  const disposables: Array<{ dispose(): void }> = [module];
  try {
    // 1. Config round trip: new X(x.config) has an equal config and the same parameter layout.
    const Ctor = module.constructor as new (config: object) => ConfigurableModule;
    const twin = new Ctor(module.config);
    disposables.push(twin);
    if (JSON.stringify(twin.config) !== JSON.stringify(module.config)) {
      fail(name, 'config round trip', `new ${name}(config).config differs: ${JSON.stringify(twin.config)} vs ${JSON.stringify(module.config)}`);
    }
    const layout = (m: Module) => m.namedParameters().map(([key, v]) => `${key}:${v.shape.join('x')}`).join(',');
    if (layout(twin) !== layout(module)) fail(name, 'config round trip', `parameter layout differs:\n${layout(twin)}\nvs\n${layout(module)}`);

    // 1b. The layout a config implies, learnt without allocating (what BaseModel.load checks a
    // checkpoint against before building it), is the module's state dict.
    const before = tf.memory().numTensors;
    const implied = stateLayout(() => new Ctor(module.config));
    if (tf.memory().numTensors !== before) fail(name, 'layout', `a layout pass allocated ${tf.memory().numTensors - before} tensors`);
    const impliedText = implied.entries.map((e) => `${e.name}:${e.shape.join('x')}`).join(',');
    if (impliedText !== layout(module)) fail(name, 'layout', `stateLayout differs from the state dict:\n${impliedText}\nvs\n${layout(module)}`);
    if (implied.parameterElements !== module.countParameters({ trainableOnly: false })) {
      fail(name, 'layout', `stateLayout counts ${implied.parameterElements} parameters, the module ${module.countParameters({ trainableOnly: false })}`);
    }

    // 2. Parameter count.
    const count = module.countParameters({ trainableOnly: false });
    const summed = module.parameters().reduce((total, v) => total + v.size, 0);
    if (count !== summed) fail(name, 'parameter count', `countParameters() = ${count}, but the parameters hold ${summed} values`);
    if (options.expectedParameterCount !== undefined && count !== options.expectedParameterCount) {
      fail(name, 'parameter count', `countParameters() = ${count}, expected ${options.expectedParameterCount}`);
    }

    // 3. Deterministic eval output; save/load round trip gives identical outputs.
    module.eval();
    const inputs = input();
    const inputTensors = [...new Set(collectTensors(inputs))]; // one tensor may be passed several times
    const reference = runForward(module, inputs, options);
    if (reference.length === 0) fail(name, 'forward', 'returned no tensor');
    for (const [i, t] of reference.entries()) {
      if (t.dtype === 'float32' && !t.dataSync().every(Number.isFinite)) fail(name, 'forward', `output ${i} holds NaN or Infinity`);
    }
    const again = runForward(module, inputs, options);
    compareOutputs(name, 'eval determinism', again, reference, 0);
    tf.dispose(again);

    let restored: ConfigurableModule;
    if (module instanceof BaseModel) {
      const dir = await fsp.mkdtemp(path.join(os.tmpdir(), 'mie-battery-'));
      try {
        await module.save(dir);
        restored = await (module.constructor as unknown as typeof BaseModel).load(dir);
      } finally {
        await fsp.rm(dir, { recursive: true, force: true });
      }
      disposables.push(restored);
      const fromBuffers = (module.constructor as unknown as typeof BaseModel).fromBuffers(module.toBuffers());
      disposables.push(fromBuffers);
      const outB = runForward(fromBuffers, inputs, options);
      compareOutputs(name, 'toBuffers/fromBuffers round trip', outB, reference, 0);
      tf.dispose(outB);
    } else {
      restored = rebuild(module);
      disposables.push(restored);
    }
    restored.eval();
    const outRestored = runForward(restored, inputs, options);
    compareOutputs(name, 'save/load round trip', outRestored, reference, 0);
    tf.dispose(outRestored);

    // 4. Every parameter gets a finite, non-zero gradient. The loss projects the outputs on fixed
    // random weights: a plain sum would give zero gradients through normalisations.
    const trainable = module.trainableParameters();
    // A module without trainable parameters (sinusoidal encodings, rotary, parameter-free norms)
    // has no gradients to check; every other check still runs.
    const gradientsOn = () => (trainable.length ? gradients(module, inputs, options, trainable) : new Map<tf.Variable, tf.Tensor>());
    const grads = gradientsOn();
    const allowed = new Set(options.allowZeroGradient ?? []);
    for (const [key, variable] of module.namedParameters()) {
      if (!variable.trainable) continue;
      const grad = grads.get(variable);
      if (!grad) {
        if (!allowed.has(key)) fail(name, 'gradients', `parameter "${key}" received no gradient`);
        continue;
      }
      const values = grad.dataSync();
      if (!values.every(Number.isFinite)) fail(name, 'gradients', `parameter "${key}" has a non-finite gradient`);
      if (!values.some((g) => g !== 0) && !allowed.has(key)) fail(name, 'gradients', `parameter "${key}" received an all-zero gradient`);
    }
    const referenceGradients = [...grads.values()];

    // 5. Backends agree.
    const referenceData = reference.map((t) => ({ shape: t.shape, dtype: t.dtype, values: t.dataSync().slice() }));
    tf.dispose(reference);
    for (const backend of backends.slice(1)) {
      await setBackend(backend);
      const out = runForward(module, inputs, options);
      const expected = referenceData.map((d) => tf.tensor(d.values, d.shape, d.dtype));
      const backendGradients = gradientsOn();
      try {
        compareOutputs(name, `${backends[0]}/${backend} agreement`, out, expected, tolerance);
        compareOutputs(name, `${backends[0]}/${backend} gradient agreement`, [...backendGradients.values()], referenceGradients, tolerance * 10);
      } finally {
        tf.dispose(out);
        tf.dispose(expected);
        tf.dispose([...backendGradients.values()]);
      }
    }
    await setBackend(backends[0]);
    tf.dispose(referenceGradients);

    // 6. No leaks: only the module and the inputs are still alive.
    for (const d of disposables.slice(1)) d.dispose();
    const alive = tf.memory().numTensors - inputTensors.filter((t) => !t.isDisposed).length;
    if (alive !== moduleTensors) {
      fail(name, 'tensor leak', `${alive - moduleTensors} tensors leaked by forward, save/load or gradients`);
    }
    tf.dispose(inputTensors);
    module.dispose();
    if (tf.memory().numTensors !== baseline) {
      fail(name, 'tensor leak', `${tf.memory().numTensors - baseline} tensors remain after dispose()`);
    }
    // 7. A disposed module refuses clearly.
    let refusal: unknown;
    try {
      runForward(module, inputs, options);
    } catch (error) {
      refusal = error;
    }
    if (!(refusal instanceof MieConfigError) || !/disposed/.test(refusal.message)) {
      fail(name, 'disposed module', `forward after dispose() should throw a MieConfigError; got ${String(refusal)}`);
    }
  } finally {
    for (const d of disposables) d.dispose();
    if (initialBackend && initialBackend !== tf.getBackend()) await tf.setBackend(initialBackend);
  }
}
