/**
 * Opt-in checks for NaN and infinities: `enableFiniteChecks(model)` installs a forward hook on the
 * model and every descendant, and the first module whose `forward` turns finite inputs into a
 * non-finite output throws a `MieNumericalError` naming its path (`encoder.layers.1.selfAttn`), its
 * class and the output (`output[0]`). A non-finite value that enters from outside (the model's own
 * input, or a raw op between modules) is named where it is first seen: the outermost checked
 * module that was called with it (`received non-finite values in argument "x"`).
 *
 * The checks read every floating-point tensor back from the backend (one synchronous read per
 * tensor per call), so they are for debugging, not for production loops.
 */
import { MieBackendError, MieNumericalError } from './errors';
import type { Module } from './module';
import { readSync, synchronousReadsAvailable } from './readback';
import { tf } from './tfjs';

/** Options of {@link enableFiniteChecks}. */
export interface FiniteCheckOptions {
  /** Also check the tensors passed to each `forward` (one level into arrays and option objects). Default true. */
  checkInputs?: boolean;
}

interface Found {
  /** `output[0]`, `argument "x"`, `options.keyPaddingMask`. */
  where: string;
  shape: number[];
  kind: string;
}

interface Pending {
  path: string;
  className: string;
  found: Found;
}

/** Counts NaN and infinite entries of a floating-point tensor (others are never non-finite). */
function nonFinite(t: tf.Tensor): string | null {
  if (t.isDisposed || (t.dtype !== 'float32' && t.dtype !== 'complex64') || t.size === 0) return null;
  const [nan, inf] = tf.tidy(() => {
    const x = t.dtype === 'complex64' ? tf.real(t) : t;
    return [tf.sum(tf.cast(tf.isNaN(x), 'int32')), tf.sum(tf.cast(tf.isInf(x), 'int32'))];
  }) as [tf.Tensor, tf.Tensor];
  let counts: number[];
  try {
    const instead = 'the finite checks on a cpu or wasm backend (they are for debugging)';
    counts = [readSync(nan, 'enableFiniteChecks', instead)[0], readSync(inf, 'enableFiniteChecks', instead)[0]];
  } finally {
    tf.dispose([nan, inf]);
  }
  if (counts[0] === 0 && counts[1] === 0) return null;
  const parts = [counts[0] ? `${counts[0]} NaN` : '', counts[1] ? `${counts[1]} infinite` : ''].filter(Boolean);
  return `${parts.join(' and ')} of ${t.size} values`;
}

/** The first non-finite tensor in `value`, looking one level into arrays and plain objects. */
function findNonFinite(value: unknown, where: string, depth = 0): Found | null {
  if (value instanceof tf.Tensor) {
    const kind = nonFinite(value);
    return kind ? { where, shape: value.shape, kind } : null;
  }
  if (depth > 1 || value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const found = findNonFinite(value[i], `${where}[${i}]`, depth + 1);
      if (found) return found;
    }
    return null;
  }
  const proto = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return null; // caches and other objects: not inputs
  for (const [key, item] of Object.entries(value)) {
    const found = findNonFinite(item, `${where}.${key}`, depth + 1);
    if (found) return found;
  }
  return null;
}

/** Parameter names of a `forward` from its source text; destructured parameters are `options`. */
function parameterNames(fn: unknown): string[] {
  if (typeof fn !== 'function') return [];
  const text = Function.prototype.toString.call(fn);
  const open = text.indexOf('(');
  if (open < 0) return [];
  const names: string[] = [];
  let depth = 0;
  let current = '';
  for (let i = open + 1; i < text.length; i++) {
    const c = text[i];
    if (depth === 0 && (c === ',' || c === ')')) {
      const name = /^\s*(?:\.\.\.)?([A-Za-z_$][\w$]*)/.exec(current)?.[1] ?? 'options';
      if (current.trim()) names.push(name);
      current = '';
      if (c === ')') break;
      continue;
    }
    if ('([{'.includes(c)) depth++;
    if (')]}'.includes(c)) depth--;
    current += c;
  }
  return names;
}

/** Frees the output of a forward that is about to throw (it escaped the module's tidy), keeping inputs. */
function disposeOutput(output: unknown, inputs: unknown[]): void {
  const keep = new Set<tf.Tensor>();
  const collect = (value: unknown, into: (t: tf.Tensor) => void, depth = 0): void => {
    if (value instanceof tf.Tensor) into(value);
    else if (depth < 2 && Array.isArray(value)) value.forEach((v) => collect(v, into, depth + 1));
    else if (depth < 2 && value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
      Object.values(value).forEach((v) => collect(v, into, depth + 1));
    }
  };
  collect(inputs, (t) => keep.add(t));
  collect(output, (t) => {
    if (!keep.has(t) && !(t instanceof tf.Variable)) t.dispose();
  });
}

const label = (path: string, className: string): string => (path ? `module "${path}" (${className})` : className);
const describeFound = (found: Found): string => `${found.kind} in ${found.where} [${found.shape.join(', ')}]`;

function inputError(pending: Pending): MieNumericalError {
  return new MieNumericalError(
    `checkFinite: ${label(pending.path, pending.className)} received non-finite values (${describeFound(pending.found)}); ` +
      'they come from the caller or from computation between modules, not from a checked module.',
  );
}

/**
 * Installs finite checks on `model` and all its descendants (see the file comment). Returns a
 * function that removes them. A check that fails throws a `MieNumericalError` from the `forward`
 * call that produced (or first received) the non-finite values.
 */
export function enableFiniteChecks(model: Module, { checkInputs = true }: FiniteCheckOptions = {}): () => void {
  if (!synchronousReadsAvailable()) {
    throw new MieBackendError(
      'enableFiniteChecks: the checks read tensors synchronously, which the webgpu backend cannot do outside a browser; debug on a cpu or wasm backend (the checks are for debugging).',
    );
  }
  // Hooks run after forward, innermost first. An inner module whose inputs were already
  // non-finite is remembered, not blamed: the enclosing call decides (see below).
  let pending: Pending | null = null;
  const removers = model.namedModules().map(([path, module]) => {
    const className = module.constructor.name;
    const names = parameterNames(Object.getPrototypeOf(module).forward);
    return module.registerForwardHook((_module, inputs, output) => {
      try {
        return check(inputs, output);
      } catch (error) {
        if (!(error instanceof MieNumericalError)) disposeOutput(output, inputs); // a failed read: nothing may leak
        throw error;
      }
    });

    function check(inputs: unknown[], output: unknown): undefined {
      const isRoot = module === model;
      let badInput: Found | null = null;
      if (checkInputs) {
        for (let i = 0; i < inputs.length && !badInput; i++) {
          badInput = findNonFinite(inputs[i], names[i] === 'options' || !names[i] ? (names[i] ?? `argument ${i}`) : `argument "${names[i]}"`);
        }
      }
      if (badInput) {
        // This module was called with non-finite values: whoever called it made them. The outermost
        // such module is the one to name; an enclosing module overrides what inner ones recorded.
        pending = { path, className, found: badInput };
        if (isRoot) {
          const error = inputError(pending);
          pending = null;
          disposeOutput(output, inputs);
          throw error;
        }
        return undefined;
      }
      const badOutput = findNonFinite(output, 'output');
      if (badOutput) {
        pending = null;
        disposeOutput(output, inputs);
        throw new MieNumericalError(
          `checkFinite: ${label(path, className)} produced non-finite values (${describeFound(badOutput)}) from finite inputs.`,
        );
      }
      if (isRoot) pending = null;
      return undefined;
    }
  });
  const state = { removed: false };
  const remove = (): void => {
    if (state.removed) return;
    state.removed = true;
    for (const fn of removers) fn();
  };
  Object.defineProperty(remove, 'pendingError', {
    // Read by checkFinite: a non-finite input seen by an inner module whose caller is not checked.
    get: () => (pending ? inputError(pending) : null),
  });
  return remove;
}

/**
 * Runs `fn` with finite checks on `model` (see {@link enableFiniteChecks}) and removes them
 * afterwards, also when `fn` throws or its promise rejects. Returns what `fn` returns.
 */
export function checkFinite<T>(model: Module, fn: () => T, options: FiniteCheckOptions = {}): T {
  const remove = enableFiniteChecks(model, options);
  const finish = (): void => {
    const pendingError = (remove as unknown as { pendingError: MieNumericalError | null }).pendingError;
    remove();
    if (pendingError) throw pendingError;
  };
  let result: T;
  try {
    result = fn();
  } catch (error) {
    remove();
    throw error;
  }
  if (result instanceof Promise) {
    return result.then(
      (value) => {
        finish();
        return value;
      },
      (error: unknown) => {
        remove();
        throw error;
      },
    ) as T;
  }
  finish();
  return result;
}
