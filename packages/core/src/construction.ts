/**
 * How modules create their tensors, and the two ways of building a model other than the eager
 * one. Every tensor a module owns is created through `parameter()` (state) or `buffer()`
 * (precomputed tables, not state), both in module.ts, which ask the active construction:
 *
 * - eager (no construction active): compute the initial value, as usual;
 * - layout: allocate nothing, return placeholders that carry only a shape and a dtype, and stop
 *   as soon as the model outgrows given limits. `stateLayout` uses it to learn the state dict a
 *   config implies (names, shapes, parameter count) before anything is allocated: the analogue of
 *   PyTorch's meta device;
 * - from values: take each parameter's value from a checkpoint instead of initialising it
 *   randomly (the values are matched to parameters by creation order, which a layout pass of the
 *   same config records).
 */
import { MieResourceError, MieSerializationError, describeValue } from './errors';
import { tf } from './tfjs';

/** What a module asks for when it creates a tensor. */
export interface TensorRequest {
  /** The shape, when the caller declared it (always, for MIE's own modules). */
  shape: number[] | undefined;
  dtype: tf.DataType;
  /** Computes the eager value. */
  create: () => tf.Tensor;
}

/** The construction in force while a model is being built in one of the non-eager ways. */
export interface Construction {
  parameter(request: TensorRequest, trainable: boolean): tf.Variable;
  buffer(request: TensorRequest): tf.Tensor;
}

let active: Construction | null = null;

/** The construction in force, or null for eager construction. */
export function activeConstruction(): Construction | null {
  return active;
}

/** Runs `build` with `construction` in force (nested builds see the innermost). */
export function withConstruction<T>(construction: Construction, build: () => T): T {
  const previous = active;
  active = construction;
  try {
    return build();
  } finally {
    active = previous;
  }
}

/** One entry of a state dict as a layout pass saw it. */
export interface StateLayoutEntry {
  /** Dotted path (`encoder.layers.0.selfAttn.qProj.weight`). */
  name: string;
  shape: number[];
  dtype: tf.DataType;
  trainable: boolean;
}

/** What a config implies, learnt without allocating: see {@link stateLayout}. */
export interface StateLayout {
  /** The state dict's entries, in `stateDict()` order. */
  entries: StateLayoutEntry[];
  /** Number of scalars in the state dict (tied weights once). */
  parameterElements: number;
  /** Number of scalars in the non-state tables the model would precompute. */
  bufferElements: number;
  /** Names of the parameters in creation order (`undefined` for one that is not in the state dict). */
  creationOrder: Array<string | undefined>;
}

/** Bounds of a layout pass; building stops with a {@link MieResourceError} past them. */
export interface LayoutLimits {
  /** Most parameter tensors. */
  maxTensors?: number;
  /** Most parameter scalars. */
  maxElements?: number;
  /** Most scalars in non-state tables. */
  maxBufferElements?: number;
}

const PLACEHOLDER = Symbol('mie layout placeholder');

/** A tensor-shaped object with no data: passes `instanceof tf.Tensor` (or `tf.Variable`), holds nothing. */
function placeholder(shape: number[], dtype: tf.DataType, variable: boolean, trainable: boolean): tf.Tensor {
  const proto = variable ? tf.Variable.prototype : tf.Tensor.prototype;
  const fake = Object.create(proto) as Record<string | symbol, unknown>;
  Object.assign(fake, {
    shape,
    dtype,
    size: tf.util.sizeFromShape(shape),
    strides: tf.util.computeStrides(shape),
    dataId: {},
    id: -1,
    kept: false,
    rankType: shape.length < 5 ? String(shape.length) : 'higher',
    // Disposed from the start: any attempt to read it fails, and Module.dispose skips it.
    isDisposedInternal: true,
    [PLACEHOLDER]: true,
  });
  if (variable) Object.assign(fake, { trainable, name: 'layout placeholder' });
  return fake as unknown as tf.Tensor;
}

function shapeOf(request: TensorRequest, where: string): number[] {
  if (request.shape !== undefined) return request.shape;
  // A module that did not declare its shape: compute the value once to learn it.
  const value = tf.tidy(request.create);
  const shape = [...value.shape];
  value.dispose();
  if (!Array.isArray(shape)) throw new MieSerializationError(`${where}: a parameter has no shape.`);
  return shape;
}

/**
 * Builds a model with `build` in layout mode and returns the state dict it would have (names,
 * shapes, dtypes, in `stateDict()` order), its parameter count and the size of its precomputed
 * tables, without allocating a tensor. `build` must return the model (a `Module`): its
 * `namedParameters()` gives the names. Stops as soon as the model passes `limits`.
 */
export function stateLayout<M extends { namedParameters(): Array<[string, tf.Variable]>; modules(): unknown[] }>(
  build: () => M,
  limits: LayoutLimits = {},
  where = 'stateLayout',
): StateLayout {
  const { maxTensors = Infinity, maxElements = Infinity, maxBufferElements = Infinity } = limits;
  const created: tf.Variable[] = [];
  let parameterElements = 0;
  let bufferElements = 0;
  const construction: Construction = {
    parameter(request, trainable) {
      const shape = shapeOf(request, where);
      const value = placeholder(shape, request.dtype, true, trainable) as tf.Variable;
      created.push(value);
      parameterElements += value.size;
      if (created.length > maxTensors) {
        throw new MieResourceError(`${where}: the model would have more than ${maxTensors} parameter tensors.`);
      }
      if (parameterElements > maxElements) {
        throw new MieResourceError(`${where}: the model would have more than ${maxElements} parameters.`);
      }
      return value;
    },
    buffer(request) {
      const shape = shapeOf(request, where);
      const value = placeholder(shape, request.dtype, false, false);
      bufferElements += value.size;
      if (bufferElements > maxBufferElements) {
        throw new MieResourceError(
          `${where}: the model would precompute tables of more than ${maxBufferElements} values (${describeValue(shape)} among them).`,
        );
      }
      return value;
    },
  };
  const model = withConstruction(construction, build);
  const named = model.namedParameters();
  const nameOf = new Map<tf.Variable, string>(named.map(([name, variable]) => [variable, name]));
  return {
    entries: named.map(([name, variable]) => ({ name, shape: [...variable.shape], dtype: variable.dtype, trainable: variable.trainable })),
    parameterElements: named.reduce((total, [, variable]) => total + variable.size, 0),
    bufferElements,
    creationOrder: created.map((variable) => nameOf.get(variable)),
  };
}

/** Whether `value` is a placeholder made by a layout pass. */
export function isPlaceholder(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLACEHOLDER] === true;
}

/**
 * Builds a model with `build`, taking the value of its `k`-th created parameter from
 * `valueOf(layout.creationOrder[k])` instead of initialising it (parameters not in the state dict
 * are initialised as usual). `valueOf` returns a new tensor, which becomes the variable's data.
 * A parameter whose shape differs from the layout's is a {@link MieSerializationError}: the build
 * is not deterministic, or does not match the layout.
 */
export function buildFromValues<M>(
  build: () => M,
  layout: StateLayout,
  valueOf: (name: string) => tf.Tensor,
  where = 'buildFromValues',
): M {
  let index = 0;
  const shapes = new Map(layout.entries.map((entry) => [entry.name, entry.shape]));
  const created: tf.Tensor[] = [];
  const construction: Construction = {
    parameter(request, trainable) {
      const name = layout.creationOrder[index++];
      let variable: tf.Variable;
      if (name === undefined) {
        const value = tf.tidy(request.create);
        variable = tf.variable(value, trainable);
        value.dispose();
      } else {
        const expected = shapes.get(name)!;
        if (request.shape !== undefined && !tf.util.arraysEqual(request.shape, expected)) {
          throw new MieSerializationError(`${where}: parameter ${describeValue(name)} was built with shape [${request.shape.join(', ')}], the layout has [${expected.join(', ')}].`);
        }
        const value = valueOf(name);
        const source = value.dtype === request.dtype ? value : tf.tidy(() => tf.cast(value, request.dtype));
        variable = tf.variable(source, trainable);
        if (source !== value) source.dispose();
        value.dispose();
      }
      created.push(variable);
      return variable;
    },
    buffer(request) {
      const value = tf.keep(tf.tidy(request.create));
      created.push(value);
      return value;
    },
  };
  try {
    const model = withConstruction(construction, build);
    if (index !== layout.creationOrder.length) {
      throw new MieSerializationError(`${where}: the model created ${index} parameters, its layout ${layout.creationOrder.length}.`);
    }
    return model;
  } catch (error) {
    // A build cut short keeps nothing.
    for (const tensor of created) if (!tensor.isDisposed) tensor.dispose();
    throw error;
  }
}
