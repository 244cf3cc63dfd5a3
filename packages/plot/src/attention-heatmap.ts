/**
 * Attention maps as images: one head (or the mean over heads) of an attention-weight tensor drawn
 * with the heatmap renderer, source (key) tokens along the x axis and target (query)
 * tokens down the y axis, as in Bahdanau et al. (2015, figure 3) and bertviz's head view.
 *
 * Legend: b batch, h heads, t target (query) length, s source (key) length.
 */
import { MieConfigError, MieShapeError, checkOptions, errorMessage, tf } from '@mie/core';
import { renderHeatmap, renderHeatmapSvg, type HeatmapOptions } from './heatmap';

/**
 * Options of {@link renderAttentionHeatmap}: which map to draw and its labels; every other
 * {@link HeatmapOptions} field (`title`, `file`, `colorMap`, `vmin`, `vmax`, `fontSize`, ...) is passed on.
 */
export interface AttentionHeatmapOptions extends Omit<HeatmapOptions, 'values' | 'xTickLabels' | 'yTickLabels'> {
  /** One label per source (key) position, drawn along the x axis. Default: the positions 0, 1, ... */
  sourceTokens?: string[];
  /** One label per target (query) position, drawn down the y axis. Default: the positions 0, 1, ... */
  targetTokens?: string[];
  /** The head to draw, or `'mean'` for the average over heads. Default `'mean'`. */
  head?: number | 'mean';
  /** The batch element of a `[b, h, t, s]` tensor. Default 0. */
  batchIndex?: number;
}

const NAME = 'renderAttentionHeatmap';
const OWN_OPTIONS = ['sourceTokens', 'targetTokens', 'head', 'batchIndex'] as const;
const PASSED_ON = [
  'title', 'xLabel', 'yLabel', 'colorMap', 'vmin', 'vmax', 'colorbarLabel', 'colorbarTicks', 'cellWidth', 'cellHeight', 'fontSize', 'file',
] as const;

/**
 * Picks one `[t, s]` map out of `[t, s]`, `[h, t, s]` or `[b, h, t, s]` weights, as nested arrays
 * (read asynchronously: GPU backends cannot, or should not, read synchronously).
 */
async function selectMap(name: string, weights: tf.Tensor, head: number | 'mean', batchIndex: number): Promise<number[][]> {
  if (!(weights instanceof tf.Tensor) || weights.isDisposed || weights.rank < 2 || weights.rank > 4 || weights.dtype === 'string' || weights.dtype === 'complex64') {
    throw new MieShapeError(errorMessage(name, 'argument "weights"', 'must be a live numeric tensor [t, s], [heads, t, s] or [batch, heads, t, s]', weights));
  }
  const [batch, heads, t, s] = [...Array(4 - weights.rank).fill(1), ...weights.shape] as number[];
  if (!Number.isInteger(batchIndex) || batchIndex < 0 || batchIndex >= batch) {
    throw new MieConfigError(errorMessage(name, 'option "batchIndex"', `must be an integer in [0, ${batch}) for weights of shape [${weights.shape.join(', ')}]`, batchIndex));
  }
  if (head !== 'mean' && (!Number.isInteger(head) || head < 0 || head >= heads)) {
    throw new MieConfigError(errorMessage(name, 'option "head"', `must be 'mean' or an integer in [0, ${heads}) for weights of shape [${weights.shape.join(', ')}]`, head));
  }
  const map = tf.tidy(() => {
    const all = tf.reshape(tf.cast(weights, 'float32'), [batch, heads, t, s]); // -> [b, h, t, s]
    const perHead = tf.reshape(tf.slice(all, [batchIndex, 0, 0, 0], [1, heads, t, s]), [heads, t, s]); // [1, h, t, s] -> [h, t, s]
    return head === 'mean' ? tf.mean(perHead, 0) : tf.reshape(tf.slice(perHead, [head, 0, 0], [1, t, s]), [t, s]); // -> [t, s]
  });
  try {
    return (await map.array()) as number[][];
  } finally {
    map.dispose();
  }
}

function checkTokens(name: string, option: string, tokens: unknown, count: number, axis: string): string[] {
  if (tokens === undefined) return Array.from({ length: count }, (_, i) => String(i));
  if (!Array.isArray(tokens) || !tokens.every((token) => typeof token === 'string')) {
    throw new MieConfigError(errorMessage(name, `option "${option}"`, 'must be an array of strings', tokens));
  }
  if (tokens.length !== count) {
    throw new MieShapeError(errorMessage(name, `option "${option}"`, `must hold one token per ${axis} position of the weights (${count})`, `${tokens.length} tokens`));
  }
  return tokens;
}

/**
 * The {@link HeatmapOptions} that {@link renderAttentionHeatmap} draws: the selected `[t, s]` map as
 * `values`, the tokens as tick labels and the attention defaults (`xLabel` `'source'`, `yLabel`
 * `'target'`, sequential colours from `vmin` 0). Pass it to `layoutHeatmap` to find a cell's
 * pixels, or to another renderer.
 */
export async function attentionHeatmapOptions(weights: tf.Tensor, options: AttentionHeatmapOptions = {}): Promise<HeatmapOptions> {
  return heatmapOptions('attentionHeatmapOptions', weights, options);
}

async function heatmapOptions(name: string, weights: tf.Tensor, options: AttentionHeatmapOptions): Promise<HeatmapOptions> {
  checkOptions(name, options, [...OWN_OPTIONS, ...PASSED_ON]);
  const { sourceTokens, targetTokens, head = 'mean', batchIndex = 0, ...rest } = options;
  const values = await selectMap(name, weights, head, batchIndex);
  return {
    xLabel: 'source',
    yLabel: 'target',
    colorbarLabel: head === 'mean' ? 'attention weight (mean over heads)' : `attention weight (head ${head})`,
    colorMap: 'sequential',
    // Weights are probabilities: 0 is the bottom of the scale, the largest weight the top.
    vmin: 0,
    ...rest,
    values,
    xTickLabels: checkTokens(name, 'sourceTokens', sourceTokens, values[0].length, 'source (last axis)'),
    yTickLabels: checkTokens(name, 'targetTokens', targetTokens, values.length, 'target (second-to-last axis)'),
  };
}

/**
 * Draws attention weights as a heatmap PNG: source (key) tokens along the x axis, target (query)
 * tokens down the y axis, viridis from 0 (dark) to the largest weight (yellow), with a colour bar.
 * `weights` is `[t, s]`, `[heads, t, s]` or `[batch, heads, t, s]` (as `MultiHeadAttention` and
 * `forward(src, tgt, { returnAttention: true })` return them); `head` picks a head or averages them,
 * `batchIndex` a batch element. Resolves to the PNG bytes, also written to `file` when given. The
 * caller keeps (and disposes) `weights`.
 *
 * ```ts
 * const out = model.forward(src, tgt, { returnAttention: true });
 * await renderAttentionHeatmap(out.crossAttention[0], { sourceTokens, targetTokens, head: 0, file: 'cross.png' });
 * ```
 */
export async function renderAttentionHeatmap(weights: tf.Tensor, options: AttentionHeatmapOptions = {}): Promise<Uint8Array> {
  return renderHeatmap(await heatmapOptions(NAME, weights, options));
}

/** {@link renderAttentionHeatmap} as an SVG document (vector text; the cells as an embedded image). */
export async function renderAttentionHeatmapSvg(weights: tf.Tensor, options: AttentionHeatmapOptions = {}): Promise<string> {
  return renderHeatmapSvg(await heatmapOptions('renderAttentionHeatmapSvg', weights, options));
}
