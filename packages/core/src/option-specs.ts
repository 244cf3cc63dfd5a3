/**
 * Declarative options: one place says an option's check and default, and every class that takes
 * the option resolves it from there. A class lists the specs it accepts (in the order its config
 * keeps them); `resolveOptions` refuses unknown keys, fills defaults (a default may depend on the
 * options resolved before it) and checks every value with the module's name in the error.
 */
import { checkBoolean, checkDropout, checkOneOf, checkOptions, checkPositiveInteger, checkPositiveNumber } from './checks';
import { MieConfigError, errorMessage } from './errors';

/** How one option is checked and defaulted. */
export interface OptionSpec<T> {
  /** Returns the value when valid; throws a `MieConfigError` naming `module` and `name` otherwise. */
  check(module: string, name: string, value: unknown): T;
  /** The value when absent: a constant or a function of the options resolved before it. Absent: the option is required. */
  default?: { value: T } | { from: (resolved: Record<string, unknown>) => T };
}

export type OptionSpecs = Readonly<Record<string, OptionSpec<unknown>>>;

/** The resolved options a set of specs describes. */
export type ResolvedOptions<S extends OptionSpecs> = { readonly [K in keyof S]: S[K] extends OptionSpec<infer T> ? T : never };

/** A default: a value, or a function of the options resolved before it. */
export type OptionDefault<T> = T | ((resolved: Record<string, unknown>) => T) | undefined;

function spec<T>(check: (module: string, name: string, value: unknown) => T, fallback: OptionDefault<T>, required: boolean): OptionSpec<T> {
  if (required) return { check };
  return { check, default: typeof fallback === 'function' ? { from: fallback as (resolved: Record<string, unknown>) => T } : { value: fallback as T } };
}

/** Builders of the common option kinds: pass a default (a value or a function of earlier options), or `required`. */
export const option = {
  /** A positive integer (a width, a count). */
  positiveInteger: (fallback: OptionDefault<number> | 'required'): OptionSpec<number> =>
    spec((m, n, v) => checkPositiveInteger(m, n, v), fallback === 'required' ? undefined : fallback, fallback === 'required'),
  /** A probability in [0, 1). */
  dropout: (fallback: number): OptionSpec<number> => spec((m, n, v) => checkDropout(m, v, n), fallback, false),
  /** A boolean. */
  boolean: (fallback: OptionDefault<boolean>): OptionSpec<boolean> => spec((m, n, v) => checkBoolean(m, n, v), fallback, false),
  /** A finite number > 0. */
  positiveNumber: (fallback: number): OptionSpec<number> => spec((m, n, v) => checkPositiveNumber(m, n, v), fallback, false),
  /** One of a fixed set of strings. */
  oneOf: <T extends string>(allowed: readonly T[], fallback: OptionDefault<T>): OptionSpec<T> => spec((m, n, v) => checkOneOf(m, n, v, allowed), fallback, false),
  /** A token id or null (range checks against a vocabulary are the class's). */
  nullableInteger: (fallback: number | null = null): OptionSpec<number | null> =>
    spec(
      (m, n, v) => {
        if (v === null) return null;
        if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw new MieConfigError(errorMessage(m, `option "${n}"`, 'must be null or an integer >= 0', v));
        return v;
      },
      fallback,
      false,
    ),
  /** Any other check. */
  custom: <T>(check: (module: string, name: string, value: unknown) => T, fallback: OptionDefault<T> | 'required'): OptionSpec<T> =>
    spec(check, fallback === 'required' ? undefined : fallback, fallback === 'required'),
};

/** The same specs with the named options made required (no default). */
export function requireOptions<S extends OptionSpecs, K extends keyof S>(specs: S, names: readonly K[]): S {
  const copy: Record<string, OptionSpec<unknown>> = { ...specs };
  for (const name of names) copy[name as string] = { check: specs[name].check };
  return copy as unknown as S;
}

/** The specs of the named options only, in the given order. */
export function pickOptions<S extends OptionSpecs, K extends keyof S>(specs: S, names: readonly K[]): Pick<S, K> {
  return Object.fromEntries(names.map((name) => [name, specs[name]])) as Pick<S, K>;
}

/**
 * Checks `options` against `specs`: unknown keys are refused, absent ones take their defaults
 * (`undefined` counts as absent), every value is checked. Returns a frozen object with the
 * options in the specs' order.
 */
export function resolveOptions<S extends OptionSpecs>(module: string, options: object, specs: S): ResolvedOptions<S> {
  const given = checkOptions(module, options, Object.keys(specs)) as Record<string, unknown>;
  const resolved: Record<string, unknown> = {};
  for (const [name, { check, default: fallback }] of Object.entries(specs)) {
    const value = given[name];
    if (value !== undefined) resolved[name] = check(module, name, value);
    else if (fallback === undefined) throw new MieConfigError(errorMessage(module, `option "${name}"`, 'is required', value));
    else resolved[name] = 'value' in fallback ? fallback.value : check(module, name, fallback.from(resolved));
  }
  return Object.freeze(resolved) as ResolvedOptions<S>;
}
