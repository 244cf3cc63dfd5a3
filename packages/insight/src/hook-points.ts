/**
 * The hook points of a model, named by module path and point (`decoder.layers.1.crossAttn.hookPattern`),
 * as TransformerLens names them (`blocks.1.attn.hook_pattern`), in MIE's camelCase.
 */
import { MieConfigError, Module, describeValue, listForMessage } from '@mie/core';

/** One hook point of a model. */
export interface HookPointRef {
  /** `path.point`, or `point` for the model itself. */
  name: string;
  /** The module whose computation holds it. */
  module: Module;
  /** The point (`hookQ`, `hookResidPost`, ...). */
  point: string;
}

/** Which hook points a call concerns: a list of names, a predicate, or (absent) all of them. */
export type HookPointSelection = readonly string[] | ((name: string) => boolean);

function checkModel(where: string, model: unknown): asserts model is Module {
  if (!(model instanceof Module) || model.isDisposed) {
    throw new MieConfigError(`${where}: model must be a live MIE Module. Received: ${describeValue(model)}.`);
  }
}

/** Every hook point of `model` and its descendants, in module order (depth first, field order). */
export function hookPointRefs(model: Module, where = 'hookPointRefs'): HookPointRef[] {
  checkModel(where, model);
  return model.namedModules().flatMap(([path, module]) =>
    module.hookPoints().map((point) => ({ name: path ? `${path}.${point}` : point, module, point })),
  );
}

/** The names of every hook point of `model` (`encoder.layers.0.selfAttn.hookQ`, ...). */
export function hookPointNames(model: Module): string[] {
  return hookPointRefs(model, 'hookPointNames').map((ref) => ref.name);
}

/**
 * The hook points a selection names. A listed name that the model does not have is a
 * `MieConfigError` naming it (a misspelt name would otherwise watch nothing).
 */
export function selectHookPoints(model: Module, selection: HookPointSelection | undefined, where: string): HookPointRef[] {
  const refs = hookPointRefs(model, where);
  if (selection === undefined) return refs;
  if (typeof selection === 'function') return refs.filter((ref) => selection(ref.name) === true);
  if (!Array.isArray(selection) || !selection.every((name) => typeof name === 'string')) {
    throw new MieConfigError(`${where}: names must be an array of hook point names or a predicate. Received: ${describeValue(selection)}.`);
  }
  const byName = new Map(refs.map((ref) => [ref.name, ref]));
  const unknown = selection.filter((name) => !byName.has(name));
  if (unknown.length > 0) {
    const examples = refs.slice(0, 3).map((ref) => ref.name);
    throw new MieConfigError(
      `${where}: unknown hook point${unknown.length > 1 ? 's' : ''} ${listForMessage(unknown.map((n) => describeValue(n)))}; this model has ${refs.length} (${examples.join(', ')}, ...: see hookPointNames(model)).`,
    );
  }
  return selection.map((name) => byName.get(name) as HookPointRef);
}
