/**
 * Typed errors raised by every MIE package. Each message names the module, the argument,
 * what was expected and what was received, so that a failure can be fixed from the message alone.
 */
import { tf } from './tfjs';

/** Base class of every error MIE raises on purpose. */
export class MieError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** An invalid constructor option or configuration (wrong type, out of range, inconsistent). */
export class MieConfigError extends MieError {}

/** A tensor of the wrong rank, shape, dtype or value range passed to a module. */
export class MieShapeError extends MieError {}

/** A checkpoint, state dict or safetensors file that cannot be read, written or applied. */
export class MieSerializationError extends MieError {}

/** A non-finite value (NaN or infinity) found by an opt-in check such as `enableFiniteChecks`. */
export class MieNumericalError extends MieError {}

/**
 * A request that needs more memory (or other resources) than the runtime can give: refused before
 * anything is allocated, so that the backend stays usable. The message says what was asked, how
 * much it needs and how much is available.
 */
export class MieResourceError extends MieError {}

/** A backend that cannot be selected or initialised. */
export class MieBackendError extends MieError {}

/**
 * Renders a received value for an error message: short, never huge, and safe on hostile values.
 * It runs no code of the value: no `toString`, `valueOf`, getters or `constructor` lookups through
 * the object itself (a JSON file can hold `{"constructor": {"name": {"toString": 1}}}`); a class
 * name is read from the prototype chain only, and only when it is a plain string.
 */
export function describeValue(value: unknown): string {
  try {
    return describe(value, 0);
  } catch {
    // A Proxy's traps, or a revoked Proxy, may throw: the message must still be built.
    return 'a value that cannot be described';
  }
}

function describe(value: unknown, depth: number): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'bigint') {
    const digits = String(value);
    return digits.length > 40 ? `a ${digits.length}-character integer` : digits;
  }
  if (typeof value === 'symbol') return 'a symbol';
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) {
    if (depth >= 2) return `an array of ${value.length} items`;
    const shown = value.slice(0, 8).map((item) => describe(item, depth + 1)).join(', ');
    return `[${shown}${value.length > 8 ? `, ... (${value.length} items)` : ''}]`;
  }
  if (Object.prototype.isPrototypeOf.call(tf.Tensor.prototype, value)) {
    // Own data properties of a real tensor (shape is a plain array, dtype a string).
    const shape = Object.getOwnPropertyDescriptor(value, 'shape')?.value as unknown;
    const dtype = Object.getOwnPropertyDescriptor(value, 'dtype')?.value as unknown;
    if (Array.isArray(shape) && typeof dtype === 'string') {
      return `tensor ${dtype.slice(0, 16)}[${shape.slice(0, 8).map((d) => (typeof d === 'number' ? d : '?')).join(', ')}${shape.length > 8 ? ', ...' : ''}]`;
    }
    return 'a tensor';
  }
  const name = className(value as object);
  if (ArrayBuffer.isView(value)) return `a ${name ?? 'typed array'} of ${value.byteLength} bytes`;
  return name && name !== 'Object' ? `a ${name}` : 'an object';
}

/**
 * The name of the class that made `value`, read from its prototype chain (never from the object's
 * own properties, which a file controls), or undefined.
 */
function className(value: object): string | undefined {
  let proto: object | null = Object.getPrototypeOf(value);
  for (let hops = 0; proto !== null && hops < 32; hops++) {
    const ctor: unknown = Object.getOwnPropertyDescriptor(proto, 'constructor')?.value;
    const name: unknown = typeof ctor === 'function' ? Object.getOwnPropertyDescriptor(ctor, 'name')?.value : undefined;
    if (typeof name === 'string' && name !== '') return name.length > 60 ? `${name.slice(0, 57)}...` : name;
    proto = Object.getPrototypeOf(proto);
  }
  return undefined;
}

/**
 * The message of a caught value, for wrapping it in a typed error, without running code of it:
 * the own `message` string of an error (Node's system errors fail `instanceof Error` across
 * realms, under Jest for one), capped at 500 characters, else a description of the value.
 */
export function causeMessage(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    try {
      const message: unknown = Object.getOwnPropertyDescriptor(error, 'message')?.value;
      if (typeof message === 'string') return message.length > 500 ? `${message.slice(0, 497)}...` : message;
    } catch {
      // A Proxy's trap may throw.
    }
  }
  return describeValue(error);
}

/**
 * Joins a list of items for a message, showing at most `limit` of them and counting the rest:
 * `"a", "b", "c" and 117 more`. Keeps messages about huge inputs (thousands of mismatched
 * state-dict keys) short.
 */
export function listForMessage(items: readonly string[], limit = 10): string {
  const shown = items.slice(0, limit).join(', ');
  return items.length > limit ? `${shown} and ${items.length - limit} more` : shown;
}

/**
 * Builds the standard message: `Module: argument expected ...; received ...`.
 * Example: `LinearLayer: option "inFeatures" must be a positive integer. Received: -3.`
 */
export function errorMessage(module: string, argument: string, expected: string, received?: unknown): string {
  const tail = arguments.length >= 4 ? ` Received: ${describeValue(received)}.` : '';
  return `${module}: ${argument} ${expected}.${tail}`;
}
