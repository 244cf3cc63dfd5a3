/**
 * The logit lens (nostalgebraist 2020): each decoder layer's residual stream read through the
 * final norm and the output projection, as if the model stopped there: which tokens it would
 * predict, layer by layer, at every position.
 */
import { MieConfigError, MieShapeError, describeValue, tf, type Module } from '@mie/core';
import type { ActivationCache } from './activation-cache';
import { lensTarget } from './lens-target';

/** One predicted token. */
export interface LensToken {
  id: number;
  /** `tokens(id)` when given, else the id as text. */
  token: string;
  probability: number;
}

/** Result of {@link logitLens}. */
export interface LogitLens {
  /** Row labels: `'embeddings'` (the first layer's input), then `'layer 0'`, ... (the last is the model's output). */
  layers: string[];
  /** `top[row][position]`: the `topK` most probable tokens, best first. */
  top: LensToken[][][];
}

/** Options of {@link logitLens}. */
export interface LogitLensOptions {
  /** Tokens per position. Default 5. */
  topK?: number;
  /** Which batch row. Default 0. */
  batch?: number;
  /** Names token ids (phonemes, characters). Default: the id. */
  tokens?: (id: number) => string;
  /** Include the first layer's input (the embeddings) as a row. Default true. */
  includeEmbeddings?: boolean;
}

/**
 * The logit lens of the run recorded in `cache` (from `runWithCache(model, ...)` with at least the
 * decoder layers' `hookResidPre`/`hookResidPost`; a generation's last step). Each stream goes
 * through the decoder's final norm (pre-norm models; post-norm layers end in their own norm) and
 * the output projection, then softmax. The last row is the model's own prediction.
 */
export function logitLens(model: Module, cache: ActivationCache, options: LogitLensOptions = {}): LogitLens {
  const where = 'logitLens';
  const { topK = 5, batch = 0, tokens = String, includeEmbeddings = true } = options;
  if (!Number.isSafeInteger(topK) || topK < 1) throw new MieConfigError(`${where}: option "topK" must be a positive integer. Received: ${describeValue(topK)}.`);
  const target = lensTarget(model, where);
  const rows: Array<[string, string]> = [];
  if (includeEmbeddings) rows.push(['embeddings', `${target.layersPath}.0.hookResidPre`]);
  for (let i = 0; i < target.numLayers; i++) rows.push([`layer ${i}`, `${target.layersPath}.${i}.hookResidPost`]);
  const streams = rows.map(([, name]) => cache.get(name));
  const batchSize = streams[0].shape[0] as number;
  if (!Number.isSafeInteger(batch) || batch < 0 || batch >= batchSize) {
    throw new MieShapeError(`${where}: option "batch" must be an integer in [0, ${batchSize}). Received: ${describeValue(batch)}.`);
  }
  const probabilities = tf.tidy(() => {
    const stacked = tf.stack(streams.map((s) => tf.squeeze(tf.gather(s, [batch]), [0]))); // [rows, t, d]
    const normed = target.finalNorm ? target.finalNorm.forward(stacked) : stacked;
    return tf.softmax(target.project(normed)); // [rows, t, V]
  });
  const [, positions, vocab] = probabilities.shape as [number, number, number];
  const values = probabilities.dataSync();
  probabilities.dispose();
  const k = Math.min(topK, vocab);
  const top = rows.map((_, r) =>
    Array.from({ length: positions }, (_, p) => {
      const offset = (r * positions + p) * vocab;
      const ids = Array.from({ length: vocab }, (_, v) => v).sort((a, b) => values[offset + b] - values[offset + a]).slice(0, k);
      return ids.map((id) => ({ id, token: tokens(id), probability: values[offset + id] }));
    }),
  );
  return { layers: rows.map(([label]) => label), top };
}

/** The top-1 table of a logit lens, as `@mie/plot`'s `renderLogitLens` draws it. */
export function logitLensTable(lens: LogitLens, positionLabels: readonly string[]): { layers: string[]; positions: string[]; cells: { token: string; probability: number }[][] } {
  const positions = lens.top[0]?.length ?? 0;
  if (positionLabels.length !== positions) {
    throw new MieShapeError(`logitLensTable: positionLabels must have one label per position (${positions}). Received: ${positionLabels.length}.`);
  }
  return {
    layers: [...lens.layers],
    positions: [...positionLabels],
    cells: lens.top.map((row) => row.map(([best]) => ({ token: best.token, probability: best.probability }))),
  };
}
