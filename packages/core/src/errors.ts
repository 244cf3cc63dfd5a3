/**
 * Typed errors raised by every MIE package. Each message names the module, the argument,
 * what was expected and what was received, so that a failure can be fixed from the message alone.
 */

/** Base class of every error MIE raises on purpose. */
export class MieError extends Error {
  constructor(message: string) {
    super(message);
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

/** A backend that cannot be selected or initialised. */
export class MieBackendError extends MieError {}

/** Renders a received value for an error message: short, and never huge. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) {
    const shown = value.slice(0, 8).map(describeValue).join(', ');
    return `[${shown}${value.length > 8 ? `, ... (${value.length} items)` : ''}]`;
  }
  if (typeof value === 'object') {
    const shape = (value as { shape?: unknown }).shape;
    const dtype = (value as { dtype?: unknown }).dtype;
    if (Array.isArray(shape) && typeof dtype === 'string') return `tensor ${dtype}[${shape.join(', ')}]`;
    const ctor = (value as object).constructor?.name;
    return ctor && ctor !== 'Object' ? `a ${ctor}` : 'an object';
  }
  return typeof value;
}

/**
 * Builds the standard message: `Module: argument expected ...; received ...`.
 * Example: `LinearLayer: option "inFeatures" must be a positive integer. Received: -3.`
 */
export function errorMessage(module: string, argument: string, expected: string, received?: unknown): string {
  const tail = arguments.length >= 4 ? ` Received: ${describeValue(received)}.` : '';
  return `${module}: ${argument} ${expected}.${tail}`;
}
