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
import { MieConfigError, MieSerializationError, MieShapeError, describeValue, listForMessage } from './errors';
import { activeConstruction, type TensorRequest } from './construction';
import { tf } from './tfjs';

/** Name -> tensor, as returned by `stateDict()` and read from or written to files. */
export type NamedTensors = Record<string, tf.Tensor>;

/** What a {@link ForwardHook} is told besides the module, its arguments and its output. */
export interface ForwardHookContext {
  /** The method that ran (`'forward'`, `'forwardWithAttention'`, `'decode'`, ...). */
  method: string;
}

/**
 * Called after every call of a module, whichever of its {@link ForwardMethods} the caller used,
 * with the module, the call's arguments and its output: what `forward` returns (for a method that
 * returns more, such as `forwardWithAttention`'s `{ output, selfAttention }`, the `output` part).
 * Returning a value other than `undefined` replaces that output, for the caller and for later
 * hooks; the replaced tensors are freed unless they were inputs. The output is usually freed by
 * the caller's `tf.tidy`: copy what you need (`t.arraySync()`, or `tf.keep(tf.clone(t))`).
 */
export type ForwardHook = (module: Module, inputs: unknown[], output: unknown, context: ForwardHookContext) => unknown;

/**
 * Where a method's main output is, for hooks: `get` reads it from the method's result, `set`
 * returns the result with it replaced. Absent: the result itself is the output.
 */
export interface ForwardOutputAccess {
  get(result: unknown): unknown;
  set(result: unknown, output: unknown): unknown;
}

/**
 * The methods through which a parent (or a user) runs a module, as PyTorch's `__call__`: each is
 * one call for hooks. A class with several entry points (`forward`, `forwardWithAttention`,
 * `decode`) lists them in a static `forwardMethods`; a call that one of them makes to another on
 * the same module is part of the outer call, so hooks fire once per call.
 */
export type ForwardMethods = Readonly<Record<string, ForwardOutputAccess | null>>;

/** For methods returning `{ output, ... }`: hooks see and replace `output`. */
export const OUTPUT_FIELD: ForwardOutputAccess = Object.freeze({
  get: (result: unknown) => (result as { output: unknown }).output,
  set: (result: unknown, output: unknown) => ({ ...(result as object), output }),
});

/** What a hook-point listener is told besides the activation. */
export interface HookPointContext {
  /** The module whose computation holds the point. */
  module: Module;
  /** The point's name (`'hookQ'`, `'hookResidPost'`, ...). */
  point: string;
}

/**
 * Listens at a hook point inside a module's computation (see {@link Module.registerHookPoint}):
 * called with the activation there; returning a tensor replaces it for the rest of the
 * computation. The activation is freed by the module's `tf.tidy`: copy what you keep
 * (`tf.keep(tf.clone(t))`).
 */
export type HookPointListener = (tensor: tf.Tensor, context: HookPointContext) => tf.Tensor | void;

/** Runs a module's hook-point listeners on an activation (`null` from `hookPointRunner` when none listens). */
export type HookPointRunner = (point: string, tensor: tf.Tensor) => tf.Tensor;

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
  /** The methods hooks wrap (see {@link ForwardMethods}); subclasses with more entry points extend it. */
  static readonly forwardMethods: ForwardMethods = { forward: null };
  #hooks: ForwardHook[] = [];
  #pointListeners = new Map<string, HookPointListener[]>();
  #wrapped: string[] = [];
  #calls = 0;
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

  /**
   * This module and every descendant, each once, with its dotted path (`''` for this one), in
   * depth-first order. Iterative, so that a model of any depth or width cannot overflow the stack.
   */
  namedModules(prefix = ''): Array<[string, Module]> {
    const seen = new Set<Module>();
    const result: Array<[string, Module]> = [];
    const stack: Array<[string, Module]> = [[prefix, this]];
    while (stack.length > 0) {
      const [path, module] = stack.pop()!;
      if (seen.has(module)) continue;
      seen.add(module);
      result.push([path, module]);
      const children = module.namedChildren();
      for (let i = children.length - 1; i >= 0; i--) {
        const [name, child] = children[i];
        if (!seen.has(child)) stack.push([path ? `${path}.${name}` : name, child]);
      }
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
        problems.push(`${describeValue(key)} is not a live tensor (received ${describeValue(value)})`);
      } else if (!tf.util.arraysEqual(value.shape, variable.shape)) {
        problems.push(`${describeValue(key)} has shape [${value.shape.join(', ')}], expected [${variable.shape.join(', ')}]`);
      } else if (value.dtype === 'string' || value.dtype === 'complex64') {
        problems.push(`${describeValue(key)} has dtype ${value.dtype}, expected ${variable.dtype}`);
      }
    }
    const quoted = (keys: string[]) => listForMessage(keys.map((k) => describeValue(k)));
    if (strict) {
      if (missingKeys.length) problems.push(`missing keys: ${quoted(missingKeys)}`);
      if (unexpectedKeys.length) problems.push(`unexpected keys: ${quoted(unexpectedKeys)}`);
    }
    if (problems.length) {
      const shown = problems.length > 10 ? [...problems.slice(0, 10), `${problems.length - 10} more problems`] : problems;
      throw new MieSerializationError(`${this.constructor.name}.loadStateDict: ${shown.join('; ')}.`);
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
   * Calls `hook(module, inputs, output, { method })` after every call of this module through any
   * of its class's `forwardMethods` (`forward`, and `forwardWithAttention`, `decode`... where a
   * class has them), including calls made by a parent module and the steps of cached generation.
   * Returns a function that removes the hook.
   */
  registerForwardHook(hook: ForwardHook): () => void {
    if (typeof hook !== 'function') {
      throw new MieConfigError(`${this.constructor.name}.registerForwardHook: hook must be a function. Received: ${describeValue(hook)}.`);
    }
    this.#hooks.push(hook);
    if (this.#wrapped.length === 0 && !this.#disposed) this.#wrapMethods();
    return () => {
      const index = this.#hooks.indexOf(hook);
      if (index >= 0) this.#hooks.splice(index, 1);
      if (this.#hooks.length === 0 && !this.#disposed) {
        for (const name of this.#wrapped) delete (this as Record<string, unknown>)[name];
        this.#wrapped = [];
      }
    };
  }

  /** Installs, on this instance, a hook-running wrapper of every forward method. */
  #wrapMethods(): void {
    const methods = (this.constructor as typeof Module).forwardMethods;
    for (const [name, access] of Object.entries(methods)) {
      const original = (Object.getPrototypeOf(this) as Record<string, unknown>)[name];
      if (typeof original !== 'function') continue;
      const hooks = this.#hooks;
      Object.defineProperty(this, name, {
        configurable: true,
        enumerable: false,
        writable: true,
        value: (...args: unknown[]) => {
          if (this.#calls > 0) return original.apply(this, args); // part of an outer call
          this.#calls++;
          let result: unknown;
          try {
            result = original.apply(this, args);
          } finally {
            this.#calls--;
          }
          const initial = access ? access.get(result) : result;
          let output = initial;
          for (const fn of [...hooks]) {
            const replaced = fn(this, args, output, { method: name });
            if (replaced !== undefined && replaced !== output) {
              freeReplaced(output, replaced, args);
              output = replaced;
            }
          }
          if (output === initial) return result;
          return access ? access.set(result, output) : output;
        },
      });
      this.#wrapped.push(name);
    }
  }

  /**
   * The named points inside this module's computation where an activation can be read or
   * replaced (TransformerLens's hook points: `hookQ`, `hookPattern`, `hookResidPost`, ...). None
   * for most modules; attention modules and transformer layers override it. `@mie/insight` names
   * them by module path: `decoder.layers.1.crossAttn.hookPattern`.
   */
  hookPoints(): readonly string[] {
    return [];
  }

  /**
   * Calls `listener(tensor, { module, point })` with the activation at `point` (one of
   * {@link hookPoints}) every time the module computes it; returning a tensor replaces the
   * activation. Returns a function that removes the listener. A point nobody listens to costs
   * nothing.
   */
  registerHookPoint(point: string, listener: HookPointListener): () => void {
    const name = this.constructor.name;
    const points = this.hookPoints();
    if (!points.includes(point)) {
      throw new MieConfigError(`${name}.registerHookPoint: unknown hook point ${describeValue(point)}; ${points.length ? `the points are ${points.join(', ')}` : 'this module has none'}.`);
    }
    if (typeof listener !== 'function') throw new MieConfigError(`${name}.registerHookPoint: listener must be a function. Received: ${describeValue(listener)}.`);
    const listeners = this.#pointListeners.get(point) ?? [];
    listeners.push(listener);
    this.#pointListeners.set(point, listeners);
    return () => {
      const index = listeners.indexOf(listener);
      if (index >= 0) listeners.splice(index, 1);
      if (listeners.length === 0 && this.#pointListeners.get(point) === listeners) this.#pointListeners.delete(point);
    };
  }

  /**
   * For subclasses: a function running the listeners of a point on an activation, or `null` when
   * nothing listens anywhere in this module (so a computation can skip preparing the views it
   * would hand to listeners).
   */
  protected get hookPointRunner(): HookPointRunner | null {
    return this.#pointListeners.size === 0 ? null : (point, tensor) => this.hookPoint(point, tensor);
  }

  /** For subclasses: runs the listeners of `point` on `tensor`; returns it, or what replaced it. */
  protected hookPoint(point: string, tensor: tf.Tensor): tf.Tensor {
    const listeners = this.#pointListeners.get(point);
    if (!listeners) return tensor;
    let value = tensor;
    for (const listener of [...listeners]) {
      const replaced = listener(value, { module: this, point });
      if (replaced === undefined) continue;
      if (!(replaced instanceof tf.Tensor) || replaced.isDisposed || !tf.util.arraysEqual(replaced.shape, value.shape)) {
        throw new MieShapeError(`${this.constructor.name}: a listener at ${point} must return nothing or a live tensor of shape [${value.shape.join(', ')}]. Received: ${describeValue(replaced)}.`);
      }
      value = replaced;
    }
    return value;
  }

  /** Whether `dispose()` was called. */
  get isDisposed(): boolean {
    return this.#disposed;
  }

  /**
   * Frees every variable and owned tensor of this module and its descendants. Idempotent. After
   * it, every method of the modules' own classes (`forward`, `generate`, `save`, ...) throws (or
   * rejects with) a `MieConfigError` saying the module was disposed, instead of failing somewhere
   * inside tfjs.
   */
  dispose(): void {
    for (const module of this.modules()) {
      if (module.#disposed) continue;
      module.#disposed = true;
      for (const key of Object.keys(module)) {
        const value = (module as unknown as Record<string, unknown>)[key];
        if (value instanceof tf.Tensor && !value.isDisposed) value.dispose();
      }
      disableMethods(module);
    }
  }

  [Symbol.dispose](): void {
    this.dispose();
  }
}

/** The tensors directly in a value: itself, or the elements or fields of an array or plain object. */
function tensorsIn(value: unknown): tf.Tensor[] {
  if (value instanceof tf.Tensor) return [value];
  if (Array.isArray(value)) return value.filter((item): item is tf.Tensor => item instanceof tf.Tensor);
  if (value !== null && typeof value === 'object') return Object.values(value).filter((item): item is tf.Tensor => item instanceof tf.Tensor);
  return [];
}

/** Frees the tensors of an output a hook replaced, except those it kept and the call's inputs. */
function freeReplaced(previous: unknown, replacement: unknown, inputs: unknown[]): void {
  const kept = new Set<tf.Tensor>([...tensorsIn(replacement), ...inputs.flatMap(tensorsIn)]);
  for (const tensor of tensorsIn(previous)) {
    if (!kept.has(tensor) && !(tensor instanceof tf.Variable) && !tensor.isDisposed) tensor.dispose();
  }
}

const AsyncFunction = (async () => undefined).constructor;

/** Replaces the methods of a disposed module's own classes with ones that fail clearly. */
function disableMethods(module: Module): void {
  const name = module.constructor.name;
  for (let proto = Object.getPrototypeOf(module); proto && proto !== Module.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const descriptor = Object.getOwnPropertyDescriptor(proto, key);
      if (key === 'constructor' || typeof descriptor?.value !== 'function') continue;
      const asynchronous = descriptor.value instanceof AsyncFunction;
      const refuse = () => new MieConfigError(`${name}.${key}: the module was disposed; build or load a new one.`);
      Object.defineProperty(module, key, {
        configurable: true,
        enumerable: false,
        writable: true,
        value: asynchronous ? () => Promise.reject(refuse()) : () => { throw refuse(); },
      });
    }
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

/** Options of {@link parameter}. */
export interface ParameterOptions {
  /** `false` makes a persistent buffer: saved, not trained. Default true. */
  trainable?: boolean;
  /** Dtype of the variable (with a declared shape). Default float32. */
  dtype?: tf.DataType;
}

/**
 * Creates a variable for a module field and frees the initial tensor. Declare the shape and pass
 * an initialiser of it, `this.weight = parameter([out, inp], (shape) => xavierUniform(shape))`:
 * then a model can be laid out (`stateLayout`) and loaded from a checkpoint without computing the
 * initial values. The older form `parameter(() => tensor)` (or `parameter(tensor)`) still works,
 * but computes the value even when it is not needed. `trainable: false` makes a persistent buffer
 * (saved, not trained).
 */
export function parameter(shape: readonly number[], init: (shape: number[]) => tf.Tensor, options?: ParameterOptions): tf.Variable;
export function parameter(init: tf.Tensor | (() => tf.Tensor), options?: ParameterOptions): tf.Variable;
export function parameter(
  first: readonly number[] | tf.Tensor | (() => tf.Tensor),
  second?: ((shape: number[]) => tf.Tensor) | ParameterOptions,
  third?: ParameterOptions,
): tf.Variable {
  const declared = Array.isArray(first);
  const options = ((declared ? third : second) ?? {}) as ParameterOptions;
  const { trainable = true } = options;
  let request: TensorRequest;
  if (declared) {
    const shape = [...(first as readonly number[])];
    const init = second as (shape: number[]) => tf.Tensor;
    request = {
      shape,
      dtype: options.dtype ?? 'float32',
      create: () => {
        const value = init([...shape]);
        if (!tf.util.arraysEqual(value.shape, shape)) {
          throw new MieShapeError(`parameter: the initialiser returned shape [${value.shape.join(', ')}] for declared shape [${shape.join(', ')}].`);
        }
        return value;
      },
    };
  } else {
    const init = first as tf.Tensor | (() => tf.Tensor);
    request = {
      shape: init instanceof tf.Tensor ? [...init.shape] : undefined,
      dtype: init instanceof tf.Tensor ? init.dtype : (options.dtype ?? 'float32'),
      create: () => (typeof init === 'function' ? init() : tf.clone(init)),
    };
    if (init instanceof tf.Tensor) {
      // The caller handed over a tensor: it is consumed whatever the construction.
      const construction = activeConstruction();
      if (construction) {
        const variable = construction.parameter(request, trainable);
        init.dispose();
        return variable;
      }
      const variable = tf.variable(init, trainable);
      init.dispose();
      return variable;
    }
  }
  const construction = activeConstruction();
  if (construction) return construction.parameter(request, trainable);
  const value = tf.tidy(request.create);
  const variable = tf.variable(value, trainable);
  value.dispose();
  return variable;
}

/**
 * Creates a tensor that a module owns but that is not state (a precomputed table: sinusoids,
 * rotary angles, ALiBi slopes), PyTorch's `register_buffer(..., persistent=False)`. Declaring the
 * shape lets a layout pass skip the computation. The tensor survives any enclosing `tf.tidy`;
 * `Module.dispose()` frees it.
 */
export function buffer<T extends tf.Tensor = tf.Tensor>(shape: readonly number[], create: () => T, dtype: tf.DataType = 'float32'): T {
  const request: TensorRequest = { shape: [...shape], dtype, create };
  const construction = activeConstruction();
  if (construction) return construction.buffer(request) as T;
  return tf.keep(tf.tidy(create));
}
