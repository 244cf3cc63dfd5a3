import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieConfigError, MieShapeError, setBackend, setSeed, tf } from '@mie/core';
import { heatmapColor, layoutHeatmap, type HeatmapLayout } from './heatmap';
import { decodePng, pixelAt, type DecodedPng } from './__tests__/png';
import { attentionHeatmapOptions, renderAttentionHeatmap, renderAttentionHeatmapSvg, type AttentionHeatmapOptions } from './attention-heatmap';
import { EncoderDecoderTransformer } from '@mie/transformer';

// Written for a person to look at; MIE_HEATMAP_DIR keeps them (the tests delete their own temporary folder).
let dir: string;
beforeAll(async () => {
  await setBackend('cpu');
  setSeed(5);
  dir = process.env.MIE_HEATMAP_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mie-attention-heatmap-'));
});
afterAll(() => {
  if (!process.env.MIE_HEATMAP_DIR) fs.rmSync(dir, { recursive: true, force: true });
});

const source = ['<s>', 'le', 'chat', 'noir', '</s>'];
const target = ['<s>', 'the', 'black', 'cat'];

/** `[heads 2, t 4, s 5]`: head 0 is the alignment target i -> a chosen source j; head 1 is uniform. */
const ALIGNMENT = [0, 1, 3, 2];
function weights(): tf.Tensor3D {
  const head0 = target.map((_, i) => source.map((__, j) => (j === ALIGNMENT[i] ? 0.8 : 0.05)));
  const head1 = target.map(() => source.map(() => 1 / source.length));
  return tf.tensor3d([head0, head1]);
}

function centre(layout: HeatmapLayout, row: number, column: number): [number, number] {
  return [layout.plot.x + (column + 0.5) * layout.cellWidth, layout.plot.y + (row + 0.5) * layout.cellHeight];
}

/** Relative luminance (0-255): viridis rises from dark purple (0) to yellow (max). */
const luminance = ([r, g, b]: number[]): number => 0.2126 * r + 0.7152 * g + 0.0722 * b;

async function render(w: tf.Tensor, options: AttentionHeatmapOptions): Promise<{ png: DecodedPng; layout: HeatmapLayout; values: number[][] }> {
  const bytes = await renderAttentionHeatmap(w, options);
  const { file: _file, ...rest } = options;
  const heatmap = await attentionHeatmapOptions(w, rest);
  return { png: decodePng(bytes), layout: layoutHeatmap(heatmap), values: heatmap.values };
}

describe('renderAttentionHeatmap', () => {
  it('draws one head with source tokens on x and target tokens on y, high weights brighter than low ones', async () => {
    const w = weights();
    const file = path.join(dir, 'head0.png');
    const { png, layout, values } = await render(w, { sourceTokens: source, targetTokens: target, head: 0, title: 'cross-attention, head 0', file });
    expect(fs.existsSync(file)).toBe(true);
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    expect([layout.rows, layout.columns]).toEqual([target.length, source.length]);
    expect(layout.xTicks.map((t) => t.label)).toEqual(source);
    expect(layout.yTicks.map((t) => t.label)).toEqual(target);
    expect(values[2][3]).toBeCloseTo(0.8, 6);
    // Every cell has the colour of its weight, on a scale from 0 to the largest weight.
    expect([layout.colorMap, layout.vmin, layout.vmax]).toEqual(['sequential', 0, values[0][0]]);
    target.forEach((_, i) =>
      source.forEach((__, j) => expect(pixelAt(png, ...centre(layout, i, j))).toEqual(heatmapColor(values[i][j], 'sequential', 0, layout.vmax))),
    );
    // "black" (row 2) attends to "noir" (column 3): that cell is the bright one of its row.
    const high = pixelAt(png, ...centre(layout, 2, 3));
    const low = pixelAt(png, ...centre(layout, 2, 0));
    expect(luminance(high)).toBeGreaterThan(luminance(low) + 100);
    w.dispose();
  });

  it('averages the heads by default, and picks a batch element of [b, h, t, s]', async () => {
    const w3 = weights();
    const w4 = tf.stack([tf.zerosLike(w3), w3]); // [2, 2, 4, 5]: batch 0 is all zeros
    const { values } = await render(w4, { batchIndex: 1 });
    expect(values[0][0]).toBeCloseTo((0.8 + 0.2) / 2, 6);
    expect(values[0][1]).toBeCloseTo((0.05 + 0.2) / 2, 6);
    const { layout } = await render(w4, {});
    expect(layout.xTicks.map((t) => t.label)).toEqual(['0', '1', '2', '3', '4']); // positions when no tokens are given
    const single = await render(tf.reshape(tf.slice(w3, [1, 0, 0], [1, 4, 5]), [4, 5]), { sourceTokens: source, targetTokens: target });
    expect(single.values[3][4]).toBeCloseTo(0.2, 6);
    tf.dispose([w3, w4]);
  });

  it("draws a real model's cross-attention (forward with returnAttention)", async () => {
    const model = new EncoderDecoderTransformer({
      srcVocabSize: 12, tgtVocabSize: 12, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, padTokenId: 0, dropout: 0,
    }).eval();
    const src = tf.tensor2d([[1, 4, 5, 6, 2]], [1, 5], 'int32');
    const tgt = tf.tensor2d([[1, 7, 8, 9]], [1, 4], 'int32');
    const out = model.forward(src, tgt, { returnAttention: true });
    const file = path.join(dir, 'model-cross-attention.png');
    const { png, values } = await render(out.crossAttention[0], { sourceTokens: source, targetTokens: target, head: 1, file });
    expect(png.width).toBeGreaterThan(100);
    for (const row of values) expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5); // softmax rows
    const svg = await renderAttentionHeatmapSvg(out.decoderSelfAttention[0], { sourceTokens: target, targetTokens: target, file: path.join(dir, 'self.svg') });
    expect(svg.startsWith('<svg')).toBe(true);
    for (const token of ['&lt;s&gt;', 'black', 'cat', 'attention weight (mean over heads)']) expect(svg).toContain(token);
    tf.dispose([src, tgt, out.logits, ...out.encoderSelfAttention, ...out.decoderSelfAttention, ...out.crossAttention]);
    model.dispose();
  });

  it('rejects bad weights, tokens, heads and options with typed errors', async () => {
    const w = weights();
    await expect(renderAttentionHeatmap(w, { sourceTokens: source.slice(1) })).rejects.toThrow(MieShapeError);
    await expect(renderAttentionHeatmap(w, { sourceTokens: source.slice(1) })).rejects.toThrow(
      'renderAttentionHeatmap: option "sourceTokens" must hold one token per source (last axis) position of the weights (5). Received: "4 tokens".',
    );
    await expect(renderAttentionHeatmap(w, { head: 2 })).rejects.toThrow(
      "renderAttentionHeatmap: option \"head\" must be 'mean' or an integer in [0, 2) for weights of shape [2, 4, 5]. Received: 2.",
    );
    await expect(renderAttentionHeatmap(w, { batchIndex: 1 })).rejects.toThrow(MieConfigError);
    await expect(renderAttentionHeatmap(tf.zeros([3]) as tf.Tensor, {})).rejects.toThrow(MieShapeError);
    await expect(renderAttentionHeatmap(w, { values: [[1]] } as never)).rejects.toThrow('renderAttentionHeatmap: unknown option "values"');
    await expect(renderAttentionHeatmapSvg(w, { targetTokens: [1, 2, 3, 4] as never })).rejects.toThrow(
      'renderAttentionHeatmapSvg: option "targetTokens" must be an array of strings',
    );
    w.dispose();
  });

  it('leaks no tensors', async () => {
    const w = weights();
    const start = tf.memory().numTensors;
    await renderAttentionHeatmap(w, { head: 'mean' });
    await renderAttentionHeatmapSvg(w, { head: 1 });
    await expect(renderAttentionHeatmap(w, { head: 7 })).rejects.toThrow();
    expect(tf.memory().numTensors).toBe(start);
    w.dispose();
  });
});
