/**
 * Logits processors and sampling warpers for generation, on one row of next-token logits read
 * back from the model (`Float32Array` or `Float64Array`, length V). They work in place, in plain
 * JavaScript, so every backend makes the same choices from the same logits.
 *
 * Order during generation (as Hugging Face `generate`): processors (`repetitionPenalty`,
 * `noRepeatNgramSize`) on the raw logits; then, when sampling, the warpers (temperature, top-k,
 * top-p); then softmax and a draw with a seeded generator.
 */
import { seededRandom as coreSeededRandom } from '@mie/core';

/** A row of logits or probabilities. */
export type ScoreRow = Float32Array | Float64Array | number[];

/**
 * CTRL repetition penalty (Keskar et al. 2019, as Hugging Face): for every token already in
 * `generated`, a positive logit is divided by `penalty` and a negative one multiplied by it, so
 * `penalty > 1` makes repeats less likely. In place; returns `logits`.
 */
export function applyRepetitionPenalty<T extends ScoreRow>(logits: T, generated: readonly number[], penalty: number): T {
  if (penalty === 1) return logits;
  for (const token of new Set(generated)) {
    const value = logits[token];
    logits[token] = value < 0 ? value * penalty : value / penalty;
  }
  return logits;
}

/**
 * The tokens that would complete an n-gram already present in `generated` (the last `size - 1`
 * tokens followed by the token form an n-gram seen before). Empty when `size` is 0 or the
 * sequence is too short.
 */
export function bannedNgramTokens(generated: readonly number[], size: number): number[] {
  const length = generated.length;
  if (size <= 0 || length + 1 < size) return [];
  if (size === 1) return [...new Set(generated)];
  const prefixStart = length - (size - 1);
  const banned = new Set<number>();
  // Every earlier n-gram start whose first size - 1 tokens equal the current prefix.
  for (let start = 0; start + size <= length; start++) {
    let same = true;
    for (let i = 0; i < size - 1; i++) {
      if (generated[start + i] !== generated[prefixStart + i]) {
        same = false;
        break;
      }
    }
    if (same) banned.add(generated[start + size - 1]);
  }
  return [...banned];
}

/** Sets the logits of tokens that would repeat an n-gram of `generated` to -Infinity. In place. */
export function applyNoRepeatNgram<T extends ScoreRow>(logits: T, generated: readonly number[], size: number): T {
  for (const token of bannedNgramTokens(generated, size)) logits[token] = -Infinity;
  return logits;
}

/** Divides the logits by `temperature` (> 0): below 1 sharpens, above 1 flattens. In place. */
export function applyTemperature<T extends ScoreRow>(logits: T, temperature: number): T {
  if (temperature === 1) return logits;
  for (let i = 0; i < logits.length; i++) logits[i] /= temperature;
  return logits;
}

/**
 * Top-k filtering (Fan et al. 2018): keeps the `k` largest logits (and any tied with the k-th),
 * sets the rest to -Infinity. `k` of 0 or at least V is a no-op. In place.
 */
export function applyTopK<T extends ScoreRow>(logits: T, k: number): T {
  if (k <= 0 || k >= logits.length) return logits;
  const sorted = Array.from(logits as ArrayLike<number>).sort((a, b) => b - a);
  const threshold = sorted[k - 1];
  for (let i = 0; i < logits.length; i++) if (logits[i] < threshold) logits[i] = -Infinity;
  return logits;
}

/**
 * Top-p (nucleus) filtering (Holtzman et al. 2020): keeps the smallest set of most probable
 * tokens whose probabilities sum to at least `p` (always at least one token), sets the rest to
 * -Infinity. `p` of 1 is a no-op. In place.
 */
export function applyTopP<T extends ScoreRow>(logits: T, p: number): T {
  if (p >= 1) return logits;
  const probabilities = softmax(logits);
  const order = Array.from(probabilities.keys()).sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  let cumulative = 0;
  let kept = 0;
  for (; kept < order.length; kept++) {
    cumulative += probabilities[order[kept]];
    if (cumulative >= p) {
      kept++;
      break;
    }
  }
  for (let i = Math.max(kept, 1); i < order.length; i++) logits[order[i]] = -Infinity;
  return logits;
}

/** Log-softmax in float64. A row of all -Infinity gives all -Infinity (never NaN). */
export function logSoftmax(logits: ScoreRow): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) if (logits[i] > max) max = logits[i];
  const out = new Float64Array(logits.length);
  if (max === -Infinity) return out.fill(-Infinity);
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(logits[i] - max);
  const logSum = max + Math.log(sum);
  for (let i = 0; i < logits.length; i++) out[i] = logits[i] - logSum;
  return out;
}

/** Softmax in float64. A row of all -Infinity gives all zeros. */
export function softmax(logits: ScoreRow): Float64Array {
  const out = logSoftmax(logits);
  for (let i = 0; i < out.length; i++) out[i] = Math.exp(out[i]);
  return out;
}

/** Index of the largest value (the first one on ties). */
export function argmax(values: ScoreRow): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
  return best;
}

/** A uniform [0, 1) generator. */
export type RandomSource = () => number;

/** A seeded uniform [0, 1) generator (mulberry32, @mie/core's `seededRandom`): the same seed gives the same draws on every platform. */
export const seededRandom: (seed: number) => RandomSource = coreSeededRandom;

/**
 * Draws an index from `probabilities` (non-negative, summing to about 1) by inverse CDF with one
 * uniform draw. Falls back to the most probable index when the row sums to 0.
 */
export function sampleCategorical(probabilities: ScoreRow, random: RandomSource): number {
  let total = 0;
  for (let i = 0; i < probabilities.length; i++) total += probabilities[i];
  if (!(total > 0)) return argmax(probabilities);
  const target = random() * total;
  let cumulative = 0;
  let last = 0;
  for (let i = 0; i < probabilities.length; i++) {
    if (probabilities[i] <= 0) continue;
    cumulative += probabilities[i];
    last = i;
    if (target < cumulative) return i;
  }
  return last; // rounding: target landed past the last bucket
}

/**
 * The sampling warpers in Hugging Face's order (temperature, top-k, top-p), then softmax: the
 * distribution a sampled token is drawn from. Copies `logits`.
 */
export function samplingDistribution(logits: ScoreRow, { temperature = 1, topK = 0, topP = 1 }: { temperature?: number; topK?: number; topP?: number } = {}): Float64Array {
  const warped = Float64Array.from(logits as ArrayLike<number>);
  applyTemperature(warped, temperature);
  applyTopK(warped, topK);
  applyTopP(warped, topP);
  return softmax(warped);
}
