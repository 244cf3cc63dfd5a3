/**
 * Head ablation: how much each attention head matters to a loss, measured by zeroing its
 * per-head context (`hookZ`, so the head writes nothing through `outProj`) over a set of examples.
 */
import { MieConfigError, describeValue, tf, type Module } from '@mie/core';
import { hookPointRefs } from './hook-points';
import { runWithHooks, type InsightHook } from './run';

/** A hook for `*.hookZ` that zeroes the given heads (`[b, h, q, d]`). */
export function zeroHeads(heads: readonly number[]): InsightHook {
  return (z) => {
    const numHeads = z.shape[1] as number;
    for (const head of heads) {
      if (!Number.isSafeInteger(head) || head < 0 || head >= numHeads) {
        throw new MieConfigError(`zeroHeads: head ${describeValue(head)} is not in [0, ${numHeads}).`);
      }
    }
    const keep = tf.tensor4d(Array.from({ length: numHeads }, (_, h) => (heads.includes(h) ? 0 : 1)), [1, numHeads, 1, 1]);
    return tf.mul(z, keep);
  };
}

/** One head's score. */
export interface HeadAblationScore {
  /** The attention module's path. */
  module: string;
  head: number;
  /** Mean loss with the head zeroed. */
  ablated: number;
  /** `ablated - baseline`: how much worse the model is without it. */
  delta: number;
}

/** Result of {@link headAblationScores}. */
export interface HeadAblation {
  /** Mean loss of the intact model. */
  baseline: number;
  /** Every head of every selected attention module, most important (largest delta) first. */
  heads: HeadAblationScore[];
}

/**
 * Scores every head of every attention module of `model` (or those whose path `modules` selects)
 * by the mean of `loss(example)` (a scalar tensor, freed here) over `examples` with the head
 * zero-ablated, against the intact model. Runs `1 + heads` passes over the examples.
 */
export async function headAblationScores<E>(
  model: Module,
  { examples, loss, modules }: { examples: readonly E[]; loss: (example: E) => tf.Scalar; modules?: (path: string) => boolean },
): Promise<HeadAblation> {
  const where = 'headAblationScores';
  if (!Array.isArray(examples) || examples.length === 0) throw new MieConfigError(`${where}: examples must be a non-empty array. Received: ${describeValue(examples)}.`);
  if (typeof loss !== 'function') throw new MieConfigError(`${where}: loss must be a function of an example returning a scalar tensor. Received: ${describeValue(loss)}.`);
  const meanLoss = async (hooks: Record<string, InsightHook>): Promise<number> => {
    let total = 0;
    for (const example of examples) {
      const { output } = await runWithHooks(model, () => tf.tidy(() => loss(example)), hooks);
      total += (await output.data())[0];
      output.dispose();
    }
    return total / examples.length;
  };
  const targets = hookPointRefs(model, where)
    .filter((ref) => ref.point === 'hookZ')
    .map((ref) => ({ name: ref.name, path: ref.name.slice(0, -'.hookZ'.length), heads: (ref.module as unknown as { config: { numHeads: number } }).config.numHeads }))
    .filter((target) => (modules ? modules(target.path) : true));
  const baseline = await meanLoss({});
  const heads: HeadAblationScore[] = [];
  for (const target of targets) {
    for (let head = 0; head < target.heads; head++) {
      const ablated = await meanLoss({ [target.name]: zeroHeads([head]) });
      heads.push({ module: target.path, head, ablated, delta: ablated - baseline });
    }
  }
  heads.sort((a, b) => b.delta - a.delta);
  return { baseline, heads };
}
