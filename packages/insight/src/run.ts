/**
 * Running a model with its hook points watched (`runWithCache`) or edited (`runWithHooks`):
 * TransformerLens's `run_with_cache` and `run_with_hooks`, for any MIE module and any call
 * (`forward`, `generate`, a training step).
 */
import { MieConfigError, describeValue, type Module, type tf } from '@mie/core';
import { ActivationCache } from './activation-cache';
import { selectHookPoints, type HookPointRef, type HookPointSelection } from './hook-points';

/** What a hook of {@link runWithHooks} is told besides the activation. */
export interface InsightHookContext {
  /** The hook point's full name. */
  name: string;
  /** The module computing it. */
  module: Module;
  /** The point (`hookZ`, ...). */
  point: string;
}

/**
 * Reads or replaces the activation at a hook point: return a tensor of the same shape to replace
 * it (head ablation, activation patching), or nothing to leave it. It runs inside the module's
 * `tf.tidy`: tensors it creates and returns are managed; copy what you keep (`tf.keep(tf.clone(t))`).
 */
export type InsightHook = (tensor: tf.Tensor, context: InsightHookContext) => tf.Tensor | void;

/** Runs `run` with a listener on each of `refs`; removes them whatever happens. */
async function withListeners<T>(refs: HookPointRef[], listen: (ref: HookPointRef) => (tensor: tf.Tensor) => tf.Tensor | void, run: () => T | Promise<T>): Promise<T> {
  const removers = refs.map((ref) => {
    const listener = listen(ref);
    return ref.module.registerHookPoint(ref.point, (tensor) => listener(tensor));
  });
  try {
    return await run();
  } finally {
    for (const remove of removers) remove();
  }
}

function checkRun(where: string, run: unknown): void {
  if (typeof run !== 'function') throw new MieConfigError(`${where}: run must be a function calling the model. Received: ${describeValue(run)}.`);
}

/**
 * Runs `run()` (any call of `model`: `forward`, `generate`, ...) and records a copy of the
 * activation at every hook point (or those `names` selects: a list, or a predicate on the name).
 * Resolves to `{ output, cache }`: `run`'s result, and the {@link ActivationCache} the caller
 * disposes. If `run` fails, the cache is freed and the error passed on.
 */
export async function runWithCache<T>(model: Module, run: () => T | Promise<T>, { names }: { names?: HookPointSelection } = {}): Promise<{ output: T; cache: ActivationCache }> {
  const where = 'runWithCache';
  const refs = selectHookPoints(model, names, where);
  checkRun(where, run);
  const cache = new ActivationCache();
  try {
    const output = await withListeners(refs, (ref) => (tensor) => void cache.record(ref.name, tensor), run);
    return { output, cache };
  } catch (error) {
    cache.dispose();
    throw error;
  }
}

/**
 * Runs `run()` with `hooks` at the named hook points (`{ 'encoder.layers.0.selfAttn.hookZ': fn }`):
 * each may replace its activation. Resolves to `{ output }`, `run`'s result. An unknown name is a
 * `MieConfigError`, as is a hook that returns a tensor of another shape.
 */
export async function runWithHooks<T>(model: Module, run: () => T | Promise<T>, hooks: Readonly<Record<string, InsightHook>>): Promise<{ output: T }> {
  const where = 'runWithHooks';
  if (typeof hooks !== 'object' || hooks === null || Array.isArray(hooks)) {
    throw new MieConfigError(`${where}: hooks must be an object of hook point name -> function. Received: ${describeValue(hooks)}.`);
  }
  for (const [name, hook] of Object.entries(hooks)) {
    if (typeof hook !== 'function') throw new MieConfigError(`${where}: the hook for ${describeValue(name)} must be a function. Received: ${describeValue(hook)}.`);
  }
  const refs = selectHookPoints(model, Object.keys(hooks), where);
  checkRun(where, run);
  const output = await withListeners(refs, (ref) => (tensor) => hooks[ref.name](tensor, { name: ref.name, module: ref.module, point: ref.point }), run);
  return { output };
}
