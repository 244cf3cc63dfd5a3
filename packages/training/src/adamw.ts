import { MieConfigError, MieSerializationError, checkOptions, checkPositiveNumber, describeValue, errorMessage, readSync, tf } from '@mie/core';
import { namedTrainableParameters, type NamedGradients, type NamedParameterSource } from './gradients';
import { fusedAdamWUpdate } from './adamw-kernel';

/** Options of {@link AdamW}. */
export interface AdamWOptions {
  /** Learning rate; change it per step with `optimizer.lr = schedule(step)`. Default `1e-3`. */
  lr?: number;
  /** Decay rates `[beta1, beta2]` of the first and second moment averages, each in [0, 1). Default `[0.9, 0.999]`. */
  betas?: readonly [number, number];
  /** Added to the bias-corrected root of the second moment, outside the root. Default `1e-8`. */
  eps?: number;
  /** Decoupled weight decay `lambda`: each step multiplies a parameter by `1 - lr * lambda`. Default `0.01` (PyTorch's). */
  weightDecay?: number;
  /**
   * Parameters that get no weight decay, by name (PyTorch users do this with a second param group
   * with `weight_decay = 0`). Default: none. {@link noDecayForBiasesAndNorms} excludes biases and
   * normalisation weights, the usual choice for transformers.
   */
  noDecay?: (name: string) => boolean;
}

/** The resolved options of an {@link AdamW} (`noDecay` resolved to a list of names). */
export interface AdamWConfig {
  readonly lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly noDecay: readonly string[];
}

/** An optimizer's state for a checkpoint: tensors by name (safetensors-ready) and plain JSON. */
export interface OptimizerState {
  /** `expAvg.<param>` and `expAvgSq.<param>` for every parameter updated at least once. */
  tensors: Record<string, tf.Tensor>;
  /** `{ lr, steps: { <param>: count } }`. */
  json: { lr: number; steps: Record<string, number> };
}

/** Excludes biases and the weights of normalisation layers from weight decay (name ends in `.bias`, or a path part contains "norm"). */
export function noDecayForBiasesAndNorms(name: string): boolean {
  return name === 'bias' || name.endsWith('.bias') || name.split('.').some((part) => /norm/i.test(part));
}

interface Slot {
  expAvg: tf.Tensor;
  expAvgSq: tf.Tensor;
  step: number;
}

/** The first NaN, infinite (or, with `nonNegative`, negative) entry of `values`, or null. */
function firstBadValue(values: ArrayLike<number>, nonNegative: boolean): { index: number; value: number } | null {
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!Number.isFinite(value) || (nonNegative && value < 0)) return { index: i, value };
  }
  return null;
}

const OPTIONS = ['lr', 'betas', 'eps', 'weightDecay', 'noDecay'] as const;
const NAME = 'AdamW';

function checkLearningRate(value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new MieConfigError(errorMessage(NAME, 'option "lr"', 'must be a finite number >= 0', value));
  }
  return value;
}

/**
 * AdamW (Loshchilov & Hutter 2019, "Decoupled Weight Decay Regularization"), with exactly the
 * update of `torch.optim.AdamW` (`amsgrad = False`), per parameter `p` with gradient `g` at its
 * `t`-th update:
 *
 *     p = p * (1 - lr * weightDecay)
 *     m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
 *     p = p - (lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 *
 * It updates named variables: `new AdamW(model, options)` takes a module's trainable parameters by
 * their dotted paths, and `step(grads)` takes gradients under the same names (as returned by
 * `valueAndGradients`). A parameter without a gradient is left alone and keeps its step count.
 */
export class AdamW {
  /** The resolved options; `lr` is the initial learning rate (the current one is `this.lr`). */
  readonly config: AdamWConfig;
  /** The learning rate of the next `step`. */
  #lr: number;
  readonly #parameters: Map<string, tf.Variable>;
  readonly #decay: Map<string, boolean>;
  readonly #slots = new Map<string, Slot>();

  /** Optimizes the trainable parameters of `parameters` (a module, or `[name, variable]` pairs). */
  constructor(parameters: NamedParameterSource, options: AdamWOptions = {}) {
    const { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0.01, noDecay = () => false } = checkOptions(NAME, options, OPTIONS);
    if (!Array.isArray(betas) || betas.length !== 2 || !betas.every((b) => typeof b === 'number' && b >= 0 && b < 1)) {
      throw new MieConfigError(errorMessage(NAME, 'option "betas"', 'must be two numbers in [0, 1)', betas));
    }
    if (typeof weightDecay !== 'number' || !Number.isFinite(weightDecay) || weightDecay < 0) {
      throw new MieConfigError(errorMessage(NAME, 'option "weightDecay"', 'must be a finite number >= 0', weightDecay));
    }
    if (typeof noDecay !== 'function') {
      throw new MieConfigError(errorMessage(NAME, 'option "noDecay"', 'must be a function (name) => boolean', noDecay));
    }
    this.#parameters = new Map(namedTrainableParameters(parameters));
    if (this.#parameters.size === 0) throw new MieConfigError(`${NAME}: there are no trainable parameters to optimize.`);
    this.#decay = new Map([...this.#parameters.keys()].map((name) => [name, !noDecay(name)]));
    this.config = Object.freeze({
      lr: checkLearningRate(lr),
      betas: Object.freeze([betas[0], betas[1]]) as unknown as readonly [number, number],
      eps: checkPositiveNumber(NAME, 'eps', eps),
      weightDecay,
      noDecay: Object.freeze([...this.#decay].filter(([, decays]) => !decays).map(([name]) => name)),
    });
    this.#lr = this.config.lr;
  }

  /** The learning rate the next `step` uses. Set it before each step to follow a schedule. */
  get lr(): number {
    return this.#lr;
  }

  set lr(value: number) {
    this.#lr = checkLearningRate(value);
  }

  /** The names of the parameters this optimizer updates, in order. */
  get parameterNames(): string[] {
    return [...this.#parameters.keys()];
  }

  /** How many updates the parameter `name` received (0 before its first). */
  stepCount(name: string): number {
    return this.#slots.get(name)?.step ?? 0;
  }

  /**
   * Applies one update from `grads` (name -> gradient; parameters without one are skipped). The
   * gradients are not disposed. An unknown name or a wrongly shaped gradient is an error, before
   * any parameter changes.
   */
  step(grads: NamedGradients): void {
    for (const [name, grad] of Object.entries(grads)) {
      const variable = this.#parameters.get(name);
      if (variable === undefined) {
        throw new MieConfigError(`${NAME}.step: gradient "${name}" names no parameter of this optimizer (parameters: ${this.parameterNames.slice(0, 8).join(', ')}${this.#parameters.size > 8 ? ', ...' : ''}).`);
      }
      if (!(grad instanceof tf.Tensor) || grad.isDisposed || !tf.util.arraysEqual(grad.shape, variable.shape)) {
        throw new MieConfigError(errorMessage(`${NAME}.step`, `gradient "${name}"`, `must be a live tensor of shape [${variable.shape.join(', ')}]`, grad));
      }
    }
    const lr = this.#lr;
    const [beta1, beta2] = this.config.betas;
    const { eps, weightDecay } = this.config;
    for (const [name, variable] of this.#parameters) {
      const grad = grads[name];
      if (grad === undefined) continue;
      let slot = this.#slots.get(name);
      if (slot === undefined) {
        slot = { expAvg: tf.zerosLike(variable), expAvgSq: tf.zerosLike(variable), step: 0 };
        this.#slots.set(name, slot);
      }
      const step = slot.step + 1;
      // Scalars in double precision, as PyTorch computes them in Python.
      const stepSize = lr / (1 - beta1 ** step);
      const biasCorrection2Sqrt = Math.sqrt(1 - beta2 ** step);
      const decays = weightDecay !== 0 && this.#decay.get(name) === true;
      const previous = slot;
      const fused = fusedAdamWUpdate(variable, grad, previous.expAvg, previous.expAvgSq, {
        beta1,
        beta2,
        eps,
        decayFactor: decays ? 1 - lr * weightDecay : 1,
        stepSize,
        biasCorrection2Sqrt,
      });
      if (fused) {
        const [value, expAvg, expAvgSq] = fused;
        variable.assign(value);
        value.dispose();
        previous.expAvg.dispose();
        previous.expAvgSq.dispose();
        this.#slots.set(name, { expAvg, expAvgSq, step });
        continue;
      }
      const [expAvg, expAvgSq] = tf.tidy(() => {
        const decayed = decays ? tf.mul(variable, 1 - lr * weightDecay) : variable;
        const m = tf.add(tf.mul(previous.expAvg, beta1), tf.mul(grad, 1 - beta1));
        const v = tf.add(tf.mul(previous.expAvgSq, beta2), tf.mul(tf.mul(grad, grad), 1 - beta2));
        const denominator = tf.add(tf.div(tf.sqrt(v), biasCorrection2Sqrt), eps);
        variable.assign(tf.sub(decayed, tf.mul(tf.div(m, denominator), stepSize)));
        return [m, v];
      });
      previous.expAvg.dispose();
      previous.expAvgSq.dispose();
      this.#slots.set(name, { expAvg, expAvgSq, step });
    }
  }

  /**
   * The state to checkpoint: the moment tensors (the optimizer's own: read or serialize them, do
   * not dispose them) and the learning rate and step counts as JSON. `writeSafetensors(state.tensors)`
   * plus `JSON.stringify(state.json)` store it completely.
   */
  getState(): OptimizerState {
    const tensors: Record<string, tf.Tensor> = {};
    const steps: Record<string, number> = {};
    for (const [name, slot] of this.#slots) {
      tensors[`expAvg.${name}`] = slot.expAvg;
      tensors[`expAvgSq.${name}`] = slot.expAvgSq;
      steps[name] = slot.step;
    }
    return { tensors, json: { lr: this.#lr, steps } };
  }

  /** The shape of parameter `name`, or undefined when this optimizer has no such parameter. */
  parameterShape(name: string): number[] | undefined {
    const variable = this.#parameters.get(name);
    return variable === undefined ? undefined : [...variable.shape];
  }

  /**
   * Everything `setState` would refuse in `state`, as short phrases (empty when it is usable): a
   * parameter unknown here, a step count that is not a positive integer, a missing, unexpected or
   * wrongly shaped moment, a NaN or infinite moment, or a negative second moment (its square root
   * would be NaN at the next step). Reads every moment's values; changes nothing.
   */
  validateState(state: OptimizerState): string[] {
    const problems: string[] = [];
    const json: unknown = (state as { json?: unknown } | null | undefined)?.json;
    if (typeof json !== 'object' || json === null || Array.isArray(json)) return [`json must be an object { lr, steps }, got ${describeValue(json)}`];
    const own = (key: string): unknown => (Object.prototype.hasOwnProperty.call(json, key) ? (json as Record<string, unknown>)[key] : undefined);
    const lr = own('lr');
    if (typeof lr !== 'number' || !Number.isFinite(lr) || lr < 0) problems.push(`json.lr must be a finite number >= 0, got ${describeValue(lr)}`);
    const steps = own('steps');
    if (typeof steps !== 'object' || steps === null || Array.isArray(steps)) return [...problems, `json.steps must be an object, got ${describeValue(steps)}`];
    const tensors: unknown = (state as { tensors?: unknown }).tensors;
    if (typeof tensors !== 'object' || tensors === null) return [...problems, `tensors must be an object of tensors, got ${describeValue(tensors)}`];
    const tensorOf = (key: string): unknown => (Object.prototype.hasOwnProperty.call(tensors, key) ? (tensors as Record<string, unknown>)[key] : undefined);
    const expected = new Set<string>();
    for (const [name, step] of Object.entries(steps as Record<string, unknown>)) {
      const shape = this.parameterShape(name);
      if (shape === undefined) {
        problems.push(`${describeValue(name)} is not a parameter of this optimizer`);
        continue;
      }
      if (typeof step !== 'number' || !Number.isSafeInteger(step) || step < 1) problems.push(`step count of "${name}" must be a positive integer, got ${describeValue(step)}`);
      for (const [key, nonNegative] of [[`expAvg.${name}`, false], [`expAvgSq.${name}`, true]] as const) {
        expected.add(key);
        const tensor = tensorOf(key);
        if (!(tensor instanceof tf.Tensor) || tensor.isDisposed) problems.push(`"${key}" is missing`);
        else if (!tf.util.arraysEqual(tensor.shape, shape)) problems.push(`"${key}" has shape [${tensor.shape.join(', ')}], expected [${shape.join(', ')}]`);
        else if (tensor.dtype !== 'float32' && tensor.dtype !== 'int32') problems.push(`"${key}" has dtype ${tensor.dtype}, expected float32`);
        else {
          const bad = firstBadValue(readSync(tensor, `${NAME}.validateState`, 'state tensors read back first (await tensor.data()) or built from the checkpoint bytes') as Float32Array | Int32Array, nonNegative);
          if (bad !== null) problems.push(`"${key}" holds ${bad.value} at index ${bad.index}${nonNegative ? ' (second moments must be finite and >= 0)' : ' (moments must be finite)'}`);
        }
      }
      if (problems.length >= 10) break;
    }
    const unexpected = Object.keys(tensors).filter((key) => !expected.has(key));
    if (unexpected.length) problems.push(`unexpected tensors: ${unexpected.slice(0, 5).map((key) => describeValue(key)).join(', ')}${unexpected.length > 5 ? ` and ${unexpected.length - 5} more` : ''}`);
    return problems;
  }

  /**
   * Restores a state from `getState()` (the tensors are copied; the caller keeps ownership). Every
   * entry is checked first ({@link AdamW.validateState}), so a failed load changes nothing: a
   * parameter unknown here, a missing moment, a wrong shape, a bad step count or a non-finite (or
   * negative second) moment is a `MieSerializationError` naming it.
   */
  setState(state: OptimizerState): void {
    const problems = this.validateState(state);
    if (problems.length) {
      const shown = problems.length > 10 ? [...problems.slice(0, 10), `${problems.length - 10} more problems`] : problems;
      throw new MieSerializationError(`${NAME}.setState: ${shown.join('; ')}.`);
    }
    this.#disposeSlots();
    for (const [name, step] of Object.entries(state.json.steps)) {
      this.#slots.set(name, {
        expAvg: tf.tidy(() => tf.cast(tf.clone(state.tensors[`expAvg.${name}`]), 'float32')),
        expAvgSq: tf.tidy(() => tf.cast(tf.clone(state.tensors[`expAvgSq.${name}`]), 'float32')),
        step,
      });
    }
    this.#lr = state.json.lr;
  }

  #disposeSlots(): void {
    for (const slot of this.#slots.values()) tf.dispose([slot.expAvg, slot.expAvgSq]);
    this.#slots.clear();
  }

  /** Frees the moment tensors (not the parameters). */
  dispose(): void {
    this.#disposeSlots();
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}
