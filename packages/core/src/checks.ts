/**
 * Argument checks shared by every MIE module: constructor options fail at construction with a
 * `MieConfigError`, forward inputs fail before any compute with a `MieShapeError`. Each message
 * names the module, the option or argument, what was expected and what was received.
 */
import { MieConfigError, MieShapeError, describeValue, errorMessage, listForMessage } from './errors';
import { tf } from './tfjs';

/**
 * Checks that `options` is a plain object whose keys are all in `known` (a misspelt option such
 * as `useLayernorm` would otherwise be ignored silently), and returns it.
 */
export function checkOptions<T extends object>(module: string, options: T, known: readonly string[]): T {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new MieConfigError(errorMessage(module, 'options', 'must be an object', options));
  }
  const unknown = Object.keys(options).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new MieConfigError(
      `${module}: unknown option${unknown.length > 1 ? 's' : ''} ${listForMessage(unknown.map((key) => describeValue(key)))}; ` +
        `the options are ${known.join(', ')}.`,
    );
  }
  return options;
}

/**
 * Checks the call options of a `forward` (or `generate`, ...): `undefined` gives `{}`; anything
 * but a plain object, or a key not in `known` (a misspelt `keyPaddingMsk` would otherwise be
 * ignored silently), is a `MieConfigError` naming the call.
 */
export function checkCallOptions<T extends object>(call: string, options: T | undefined, known: readonly string[]): T {
  if (options === undefined) return {} as T;
  return checkOptions(call, options, known);
}

/** A positive integer option (a width, a count), at least `minimum`. */
export function checkPositiveInteger(module: string, name: string, value: unknown, minimum = 1): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < minimum) {
    const expected = minimum === 1 ? 'must be a positive integer' : `must be an integer >= ${minimum}`;
    throw new MieConfigError(errorMessage(module, `option "${name}"`, expected, value));
  }
  return value;
}

/** A list of positive integers (hidden layer widths); may be empty. Returns a copy. */
export function checkPositiveIntegers(module: string, name: string, value: unknown): number[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === 'number' && Number.isSafeInteger(item) && item >= 1)) {
    throw new MieConfigError(errorMessage(module, `option "${name}"`, 'must be an array of positive integers', value));
  }
  return [...value];
}

/** A dropout probability in [0, 1). */
export function checkDropout(module: string, value: unknown, name = 'dropout'): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value >= 1) {
    throw new MieConfigError(errorMessage(module, `option "${name}"`, 'must be a probability in [0, 1)', value));
  }
  return value;
}

/** A boolean flag. */
export function checkBoolean(module: string, name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') {
    throw new MieConfigError(errorMessage(module, `option "${name}"`, 'must be a boolean', value));
  }
  return value;
}

/** A finite number > 0 (an epsilon, a base). */
export function checkPositiveNumber(module: string, name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new MieConfigError(errorMessage(module, `option "${name}"`, 'must be a finite number > 0', value));
  }
  return value;
}

/** One of a fixed set of strings. */
export function checkOneOf<T extends string>(module: string, name: string, value: unknown, allowed: readonly T[]): T {
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw new MieConfigError(errorMessage(module, `option "${name}"`, `must be one of ${allowed.map((a) => `"${a}"`).join(', ')}`, value));
  }
  return value as T;
}

/**
 * Checks a forward input: a live float32 tensor of rank >= 1 whose last dimension is `features`
 * (`what` names the option that fixed it, e.g. `inFeatures`). With `rank`, also its rank.
 */
export function checkFeatures(module: string, argument: string, x: unknown, features: number, what: string, rank?: number): tf.Tensor {
  if (!(x instanceof tf.Tensor) || x.isDisposed) {
    throw new MieShapeError(errorMessage(module, argument, 'must be a live tf.Tensor', x));
  }
  if (x.dtype !== 'float32') {
    throw new MieShapeError(errorMessage(module, argument, 'must have dtype float32 (cast it with tf.cast(x, "float32"))', x));
  }
  if (rank !== undefined && x.rank !== rank) {
    const dims = rank === 3 ? `[batch, seq, ${what} = ${features}]` : `rank ${rank} with last dimension ${what} = ${features}`;
    throw new MieShapeError(errorMessage(module, argument, `must have shape ${dims}`, x));
  }
  if (x.rank === 0 || x.shape[x.rank - 1] !== features) {
    throw new MieShapeError(errorMessage(module, argument, `must have shape [..., ${features}] (last dimension = ${what})`, x));
  }
  return x;
}
