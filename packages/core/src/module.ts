/**
 * A PyTorch-style module on tfjs-core. Assigning a `Module`, an array of modules or a
 * `tf.Variable` to a field registers it: children and parameters are found from the fields, in
 * the order they were assigned, and named by dotted field paths (`layers.0.selfAttn.qProj.weight`).
 *
 * A `tf.Variable` created with `trainable = false` is a persistent buffer: it is part of the state
 * dict and of saved files, but optimisers skip it. Plain `tf.Tensor` fields (precomputed tables)
 * are owned by the module and freed by `dispose()`, but are not state.
 */
import { getDevice, type DeviceInfo } from './backend';
import { MieSerializationError, MieShapeError, describeValue } from './errors';
import { tf } from './tfjs';

/** Name -> tensor, as returned by `stateDict()` and read from or written to files. */
export type NamedTensors = Record<string, tf.Tensor>;

/**
 * Called after a module's `forward` with the module, its arguments and its output. Returning a
 * value other than `undefined` replaces the output. The output is usually freed by the caller's
 * `tf.tidy`: copy what you need (`await t.array()` after `tf.keep(tf.clone(t))`, or `t.arraySync()`).
 */
export type ForwardHook = (module: Module, inputs: unknown[], output: unknown) => unknown;

/** What `loadStateDict` did not match when `strict` is false. */
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

function isVariable(value: unknown): value is tf.Variable {
  return value instanceof tf.Variable;
}

function isModuleArray(value: unknown): value is Module[] {
  return Array.isArray(value) && value.length > 0 && value.every((item) => item instanceof Module);
}

/** Base class of every MIE layer and model. Subclasses implement `forward`. */
export abstract class Module {
  /** Training mode switches dropout on; modules start in training mode, as in PyTorch. */
  training = true;
  #hooks: ForwardHook[] = [];
  #disposed = false;

  /** Computes the module's output. Each subclass defines its own signature. */
  abstract forward(...args: never[]): unknown;

  /** The direct children, named by field (`layers.0` for an array element). */
  namedChildren(): Array<[string, Module]> {
    const children: Array<[string, Module]> = [];
    for (const key of Object.keys(this)) {
      const value = (this as Record<string, unknown>)[key];
      if (value instanceof Module) children.push([key, value]);
      else if (isModuleArray(value)) value.forEach((child, i) => children.push([`${key}.${i}`, child]));
    }
    return children;
  }

  /** The direct children. */
  children(): Module[] {
    return this.namedChildren().map(([, child]) => child);
  }

  /** This module and every descendant, each once, with its dotted path (`''` for this one). */
  namedModules(prefix = '', seen: Set<Module> = new Set()): Array<[string, Module]> {
    if (seen.has(this)) return [];
    seen.add(this);
    const result: Array<[string, Module]> = [[prefix, this]];
    for (const [name, child] of this.namedChildren()) {
      result.push(...child.namedModules(prefix ? `${prefix}.${name}` : name, seen));
    }
    return result;
  }

  /** This module and every descendant, each once. */
  modules(): Module[] {
    return this.namedModules().map(([, module]) => module);
  }

  /** This module's own variables (not its children's), by field name. */
  #ownVariables(): Array<[string, tf.Variable]> {
    const own: Array<[string, tf.Variable]> = [];
    for (const key of Object.keys(this)) {
      const value = (this as Record<string, unknown>)[key];
      if (isVariable(value)) own.push([key, value]);
    }
    return own;
  }

  /**
   * Every variable with its dotted path. A variable reachable by two paths (tied weights) is
   * listed once, under the first path, as PyTorch's `named_parameters()` does.
   */
  namedParameters(): Array<[string, tf.Variable]> {
    const seen = new Set<tf.Variable>();
    const result: Array<[string, tf.Variable]> = [];
    for (const [path, module] of this.namedModules()) {
      for (const [name, variable] of module.#ownVariables()) {
        if (seen.has(variable)) continue;
        seen.add(variable);
        result.push([path ? `${path}.${name}` : name, variable]);
      }
    }
    return result;
  }

  /** Every variable, each once. */
  parameters(): tf.Variable[] {
    return this.namedParameters().map(([, variable]) => variable);
  }

  /** Trainable variables only: what an optimiser should update. */
  trainableParameters(): tf.Variable[] {
    return this.parameters().filter((variable) => variable.trainable);
  }

  /** Number of scalar parameters; buffers (`trainable = false`) count only with `trainableOnly: false`. */
  countParameters({ trainableOnly = true }: { trainableOnly?: boolean } = {}): number {
    return this.parameters()
      .filter((variable) => !trainableOnly || variable.trainable)
      .reduce((total, variable) => total + variable.size, 0);
  }

  /**
   * The module's state: every variable by dotted path (tied weights once). The tensors are the
   * module's own variables, not copies: read them, do not dispose them.
   */
  stateDict(): Record<string, tf.Variable> {
    return Object.fromEntries(this.namedParameters());
  }

  /**
   * Copies values from `state` into the module's variables. Every entry is checked before any is
   * written, so a failed load changes nothing. With `strict` (the default) a missing or unexpected
   * key is an error; a wrongly shaped entry always is. The error names every offending key.
   */
  loadStateDict(state: NamedTensors, { strict = true }: { strict?: boolean } = {}): LoadStateDictResult {
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((key) => !Object.prototype.hasOwnProperty.call(state, key));
    const unexpectedKeys = Object.keys(state).filter((key) => !Object.prototype.hasOwnProperty.call(own, key));
    const problems: string[] = [];
    for (const [key, variable] of Object.entries(own)) {
      if (!Object.prototype.hasOwnProperty.call(state, key)) continue;
      const value = state[key];
      if (!(value instanceof tf.Tensor) || value.isDisposed) {
        problems.push(`"${key}" is not a live tensor (received ${describeValue(value)})`);
      } else if (!tf.util.arraysEqual(value.shape, variable.shape)) {
        problems.push(`"${key}" has shape [${value.shape.join(', ')}], expected [${variable.shape.join(', ')}]`);
      } else if (value.dtype === 'string' || value.dtype === 'complex64') {
        problems.push(`"${key}" has dtype ${value.dtype}, expected ${variable.dtype}`);
      }
    }
    if (strict) {
      if (missingKeys.length) problems.push(`missing keys: ${missingKeys.map((k) => `"${k}"`).join(', ')}`);
      if (unexpectedKeys.length) problems.push(`unexpected keys: ${unexpectedKeys.map((k) => `"${k}"`).join(', ')}`);
    }
    if (problems.length) {
      throw new MieSerializationError(`${this.constructor.name}.loadStateDict: ${problems.join('; ')}.`);
    }
    tf.tidy(() => {
      for (const [key, variable] of Object.entries(own)) {
        const value = state[key];
        // Assigning a variable its own data would free that data first.
        if (value === undefined || value.dataId === variable.dataId) continue;
        variable.assign(value.dtype === variable.dtype ? value : tf.cast(value, variable.dtype));
      }
    });
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and every descendant. Returns `this`. */
  train(mode = true): this {
    for (const module of this.modules()) module.training = mode;
    return this;
  }

  /** Sets evaluation mode (dropout off, deterministic output). Returns `this`. */
  eval(): this {
    return this.train(false);
  }

  /** The backend this module computes on (all MIE modules share the active backend). */
  getDevice(): DeviceInfo {
    return getDevice();
  }

  /**
   * Calls `hook(module, inputs, output)` after every `forward` of this module, including calls
   * made by a parent module. Returns a function that removes the hook.
   */
  registerForwardHook(hook: ForwardHook): () => void {
    this.#hooks.push(hook);
    if (!Object.prototype.hasOwnProperty.call(this, 'forward')) {
      const original = Object.getPrototypeOf(this).forward as (...args: unknown[]) => unknown;
      const hooks = this.#hooks;
      Object.defineProperty(this, 'forward', {
        configurable: true,
        enumerable: false,
        writable: true,
        value: (...args: unknown[]) => {
          let output = original.apply(this, args);
          for (const fn of [...hooks]) {
            const replaced = fn(this, args, output);
            if (replaced !== undefined) output = replaced;
          }
          return output;
        },
      });
    }
    return () => {
      const index = this.#hooks.indexOf(hook);
      if (index >= 0) this.#hooks.splice(index, 1);
      if (this.#hooks.length === 0) delete (this as { forward?: unknown }).forward;
    };
  }

  /** Whether `dispose()` was called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /** Frees every variable and owned tensor of this module and its descendants. Idempotent. */
  dispose(): void {
    for (const module of this.modules()) {
      if (module.#disposed) continue;
      module.#disposed = true;
      for (const key of Object.keys(module)) {
        const value = (module as unknown as Record<string, unknown>)[key];
        if (value instanceof tf.Tensor && !value.isDisposed) value.dispose();
      }
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** Throws a `MieShapeError` unless `x` is a tensor of the given rank(s). */
export function checkRank(module: string, argument: string, x: unknown, ranks: number | readonly number[]): tf.Tensor {
  const allowed = typeof ranks === 'number' ? [ranks] : ranks;
  if (!(x instanceof tf.Tensor) || x.isDisposed) {
    throw new MieShapeError(`${module}: ${argument} must be a live tf.Tensor. Received: ${describeValue(x)}.`);
  }
  if (!allowed.includes(x.rank)) {
    throw new MieShapeError(
      `${module}: ${argument} must have rank ${allowed.join(' or ')}. Received: shape [${x.shape.join(', ')}] (rank ${x.rank}).`,
    );
  }
  return x;
}

/**
 * Creates a variable for a module field from an initial tensor (or a function returning one),
 * and frees the initial tensor: `this.weight = parameter(() => xavierUniform([out, in]))`.
 * `trainable: false` makes a persistent buffer (saved, not trained).
 */
export function parameter(init: tf.Tensor | (() => tf.Tensor), { trainable = true }: { trainable?: boolean } = {}): tf.Variable {
  const value = typeof init === 'function' ? tf.tidy(init) : init;
  const variable = tf.variable(value, trainable);
  value.dispose();
  return variable;
}
