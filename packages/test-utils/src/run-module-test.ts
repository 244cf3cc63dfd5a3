/**
 * The shared test battery every MIE module runs (after keras-hub's `run_layer_test`):
 * config round trip, save/load round trip with equal outputs, parameter count, a non-zero finite
 * gradient for every parameter, no leaked tensors, and cpu/wasm agreement.
 */
import * as os from 'node:os';
import * as path from 'node:path';
import * as fsp from 'node:fs/promises';
import { BaseModel, MieConfigError, Module, readSafetensors, setBackend, stateLayout, tf, writeSafetensors, type BackendChoice } from '@mie/core';
import {
  collectTensors,
  compareBackends,
  compareValues,
  fail,
  forwardTensors,
  parameterGradients,
  readAll,
  type ConfigurableModule,
  type InputFactory,
  type ModuleCall,
  type TensorValues,
} from './backend-agreement';

export type { ConfigurableModule, InputFactory } from './backend-agreement';

export interface ModuleTestOptions {
  /** Expected `countParameters({ trainableOnly: false })`, e.g. the PyTorch count. */
  expectedParameterCount?: number;
  /** Absolute + relative tolerance of the backend comparison. Default 1e-5. */
  tolerance?: number;
  /** Backends compared. Default `['cpu', 'wasm']`. */
  backends?: BackendChoice[];
  /** Parameters allowed to get a zero gradient for these inputs (dotted names). */
  allowZeroGradient?: string[];
  /** Calls the module; defaults to `module.forward(...inputs)`. */
  call?: ModuleCall;
}

/** Reads `actual` and `expected` (asynchronously) and compares them within `tol`. */
async function compareOutputs(name: string, check: string, actual: tf.Tensor[], expected: TensorValues[], tol: number): Promise<void> {
  compareValues(name, check, await readAll(actual), expected, tol);
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
    const referenceTensors = forwardTensors(module, inputs, options.call);
    const reference = await readAll(referenceTensors);
    tf.dispose(referenceTensors);
    if (reference.length === 0) fail(name, 'forward', 'returned no tensor');
    for (const [i, t] of reference.entries()) {
      if (t.dtype === 'float32' && !t.values.every(Number.isFinite)) fail(name, 'forward', `output ${i} holds NaN or Infinity`);
    }
    const again = forwardTensors(module, inputs, options.call);
    await compareOutputs(name, 'eval determinism', again, reference, 0);
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
      const outB = forwardTensors(fromBuffers, inputs, options.call);
      await compareOutputs(name, 'toBuffers/fromBuffers round trip', outB, reference, 0);
      tf.dispose(outB);
    } else {
      restored = rebuild(module);
      disposables.push(restored);
    }
    restored.eval();
    const outRestored = forwardTensors(restored, inputs, options.call);
    await compareOutputs(name, 'save/load round trip', outRestored, reference, 0);
    tf.dispose(outRestored);

    // 4. Every parameter gets a finite, non-zero gradient. The loss projects the outputs on fixed
    // random weights: a plain sum would give zero gradients through normalisations. A module
    // without trainable parameters (sinusoidal encodings, rotary, parameter-free norms) has no
    // gradients to check; every other check still runs.
    const grads = parameterGradients(module, inputs, module.trainableParameters(), options.call);
    const referenceGradients = await readAll([...grads.values()]);
    tf.dispose([...grads.values()]);
    const gradientValues = new Map([...grads.keys()].map((variable, i) => [variable, referenceGradients[i].values]));
    const allowed = new Set(options.allowZeroGradient ?? []);
    for (const [key, variable] of module.namedParameters()) {
      if (!variable.trainable) continue;
      const values = gradientValues.get(variable);
      if (!values) {
        if (!allowed.has(key)) fail(name, 'gradients', `parameter "${key}" received no gradient`);
        continue;
      }
      if (!values.every(Number.isFinite)) fail(name, 'gradients', `parameter "${key}" has a non-finite gradient`);
      if (!values.some((g) => g !== 0) && !allowed.has(key)) fail(name, 'gradients', `parameter "${key}" received an all-zero gradient`);
    }

    // 5. Backends agree (outputs and gradients), each without leaking.
    await compareBackends(module, inputs, { outputs: reference, gradients: referenceGradients }, { backends, tolerance, call: options.call });
    await setBackend(backends[0]);

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
      forwardTensors(module, inputs, options.call);
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
