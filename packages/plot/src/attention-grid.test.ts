import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieConfigError, MieShapeError, setBackend, setSeed, tf } from '@mie/core';
import { EncoderDecoderTransformer } from '@mie/transformer';
import { decodePng, pixelAt, type DecodedPng } from './__tests__/png';
import { layoutAttentionGrid, renderAttentionGrid, renderAttentionGridSvg, type AttentionGridLayout } from './attention-grid';
import { heatmapColor } from './drawing';

// Written for a person to look at; MIE_HEATMAP_DIR keeps them (the tests delete their own temporary folder).
let dir: string;
beforeAll(async () => {
  await setBackend('cpu');
  setSeed(11);
  dir = process.env.MIE_HEATMAP_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mie-attention-grid-'));
});
afterAll(() => {
  if (!process.env.MIE_HEATMAP_DIR) fs.rmSync(dir, { recursive: true, force: true });
});

const keys = ['c', 'a', 't', 's', '</s>'];
const queries = ['<s>', 'K', 'AE1', 'T'];

/**
 * `[layer 2][head 3][query 4][key 5]`: head 0 aligns query i with key i (a diagonal), head 1 looks
 * at the last key, head 2 is uniform; layer 1 repeats layer 0 with the diagonal one step later.
 */
function patterns(): number[][][][] {
  const peaked = (target: number) => keys.map((_, k) => (k === target ? 0.8 : 0.05));
  return [0, 1].map((layer) => [
    queries.map((_, q) => peaked(Math.min(q + layer, keys.length - 1))),
    queries.map(() => peaked(keys.length - 1)),
    queries.map(() => keys.map(() => 1 / keys.length)),
  ]);
}

function cellCentre(grid: AttentionGridLayout, layer: number, head: number, query: number, key: number): [number, number] {
  const panel = grid.panels[layer][head];
  return [panel.x + (key + 0.5) * grid.cellSize, panel.y + (query + 0.5) * grid.cellSize];
}

function expectCellColours(png: DecodedPng, grid: AttentionGridLayout, values: number[][][][]): void {
  values.forEach((layer, l) =>
    layer.forEach((head, h) =>
      head.forEach((row, q) => row.forEach((w, k) => expect(pixelAt(png, ...cellCentre(grid, l, h, q, k))).toEqual(heatmapColor(w, 'sequential', 0, grid.vmax)))),
    ),
  );
}

describe('renderAttentionGrid', () => {
  it('draws one panel per layer and head, every cell in the colour of its weight, with the labels', async () => {
    const values = patterns();
    const options = { keyTokens: keys, queryTokens: queries, title: 'cross-attention', file: path.join(dir, 'grid.png') };
    const png = decodePng(await renderAttentionGrid(values, options));
    const grid = layoutAttentionGrid(values, options);
    expect(fs.existsSync(options.file)).toBe(true);
    expect([png.width, png.height]).toEqual([grid.width, grid.height]);
    expect([grid.layers, grid.heads, grid.queries, grid.keys]).toEqual([2, 3, 4, 5]);
    expect([grid.colorMap, grid.vmin, grid.vmax]).toEqual(['sequential', 0, 0.8]);
    expect(grid.panels.flat()).toHaveLength(6);
    expectCellColours(png, grid, values);
    // Panels do not overlap, left to right and top to bottom.
    expect(grid.panels[0][1].x).toBeGreaterThan(grid.panels[0][0].x + grid.panels[0][0].width);
    expect(grid.panels[1][0].y).toBeGreaterThan(grid.panels[0][0].y + grid.panels[0][0].height);
    // Labels: the title, head and layer names, every query token per row of panels, the key tokens under the bottom row.
    const texts = grid.texts.map((t) => t.text);
    for (const label of ['cross-attention', 'head 0', 'head 2', 'layer 0', 'layer 1', 'attention weight']) expect(texts).toContain(label);
    expect([grid.queryTokensShown, grid.keyTokensShown]).toEqual([true, true]);
    expect(texts.filter((t) => t === 'AE1')).toHaveLength(2); // one per layer
    expect(texts.filter((t) => t === 'a')).toHaveLength(3); // one per head
    for (const t of grid.texts) {
      expect(t.box.x).toBeGreaterThanOrEqual(0);
      expect(t.box.x + t.box.width).toBeLessThanOrEqual(grid.width);
      expect(t.box.y + t.box.height).toBeLessThanOrEqual(grid.height);
    }
    expect(pixelAt(png, 1, 1)).toEqual([255, 255, 255]);
  });

  it("changes a cell's colour with its weight, and only that cell's", async () => {
    const before = patterns();
    const after = patterns();
    after[1][2][3][0] = 0.75; // was 0.2 (uniform head)
    const [a, b] = [decodePng(await renderAttentionGrid(before)), decodePng(await renderAttentionGrid(after))];
    const grid = layoutAttentionGrid(before);
    const changed = cellCentre(grid, 1, 2, 3, 0);
    expect(pixelAt(a, ...changed)).toEqual(heatmapColor(0.2, 'sequential', 0, 0.8));
    expect(pixelAt(b, ...changed)).toEqual(heatmapColor(0.75, 'sequential', 0, 0.8));
    expect(pixelAt(b, ...changed)).not.toEqual(pixelAt(a, ...changed));
    expect(pixelAt(b, ...cellCentre(grid, 1, 2, 3, 1))).toEqual(pixelAt(a, ...cellCentre(grid, 1, 2, 3, 1)));
  });

  it('reads one tensor per layer, [1, h, q, k] or [h, q, k], into the same picture, without leaking', async () => {
    // The weights as float32 holds them, so that both pictures see the same numbers.
    const values = patterns().map((layer) => layer.map((head) => head.map((row) => Array.from(Float32Array.from(row)))));
    const fromArrays = await renderAttentionGrid(values, { layerNames: ['encoder 0', 'encoder 1'] });
    const tensors = [tf.tensor4d([values[0]]), tf.tensor3d(values[1])];
    const start = tf.memory().numTensors;
    const fromTensors = await renderAttentionGrid(tensors, { layerNames: ['encoder 0', 'encoder 1'] });
    const svg = await renderAttentionGridSvg(tensors, { layerNames: ['encoder 0', 'encoder 1'] });
    await expect(renderAttentionGrid(tensors, { layerNames: ['one'] })).rejects.toThrow(MieShapeError);
    expect(tf.memory().numTensors).toBe(start);
    expect(Buffer.from(fromTensors).equals(Buffer.from(fromArrays))).toBe(true);
    expect(svg).toContain('>encoder 1</text>');
    tf.dispose(tensors);
  });

  it("draws a real model's cross- and self-attention (forward with returnAttention)", async () => {
    const model = new EncoderDecoderTransformer({
      srcVocabSize: 12, tgtVocabSize: 12, dModel: 16, numHeads: 4, numEncoderLayers: 2, numDecoderLayers: 3, dFf: 32, padTokenId: 0, dropout: 0,
    }).eval();
    const src = tf.tensor2d([[4, 5, 6, 7, 2]], [1, 5], 'int32');
    const tgt = tf.tensor2d([[1, 7, 8, 9]], [1, 4], 'int32');
    const out = model.forward(src, tgt, { returnAttention: true });
    const start = tf.memory().numTensors;
    const png = decodePng(await renderAttentionGrid(out.crossAttention, { keyTokens: keys, queryTokens: queries, file: path.join(dir, 'model-cross.png') }));
    const svg = await renderAttentionGridSvg(out.encoderSelfAttention, { keyTokens: keys, queryTokens: keys, file: path.join(dir, 'model-self.svg') });
    expect(tf.memory().numTensors).toBe(start);
    const cross = await Promise.all(out.crossAttention.map((t) => t.array() as Promise<number[][][][]>));
    const grid = layoutAttentionGrid(cross.map((t) => t[0]), { keyTokens: keys, queryTokens: queries });
    expect([grid.layers, grid.heads, png.width, png.height]).toEqual([3, 4, grid.width, grid.height]);
    expectCellColours(png, grid, cross.map((t) => t[0]));
    expect((svg.match(/<rect x="[\d.]+" y="[\d.]+" width="\d+" height="\d+" fill="#[0-9a-f]{6}"\/>/g) ?? []).length).toBe(2 * 4 * 5 * 5);
    tf.dispose([src, tgt, out.logits, ...out.encoderSelfAttention, ...out.decoderSelfAttention, ...out.crossAttention]);
    model.dispose();
  });

  it('hides tokens that do not fit their cells, and sizes cells by itself', () => {
    const values = patterns();
    const small = layoutAttentionGrid(values, { keyTokens: keys, queryTokens: queries, cellSize: 6 });
    expect([small.queryTokensShown, small.keyTokensShown]).toEqual([false, false]);
    expect(small.texts.map((t) => t.text)).not.toContain('AE1');
    // Wide key labels in cells tall enough for a line: drawn upright.
    const upright = layoutAttentionGrid(values, { keyTokens: keys.map((k) => `${k}-long-label`), cellSize: 14 });
    expect(upright.keyTokensShown).toBe(true);
    expect(upright.texts.filter((t) => t.text.endsWith('-long-label')).every((t) => t.vertical)).toBe(true);
    // Defaults: cells fit the tokens' font; without tokens, panels of about 192 pixels.
    expect(layoutAttentionGrid(values, { keyTokens: keys }).cellSize).toBeGreaterThanOrEqual(14);
    const long = Array.from({ length: 1 }, () => [Array.from({ length: 64 }, () => new Array<number>(64).fill(1 / 64))]);
    expect(layoutAttentionGrid(long).cellSize).toBe(3);
  });
});

describe('renderAttentionGridSvg', () => {
  it('writes one rect per cell in its colour, the labels as text, and escapes them', async () => {
    const values = patterns();
    const file = path.join(dir, 'grid.svg');
    const svg = await renderAttentionGridSvg(values, { keyTokens: keys, queryTokens: queries, title: 'a < b', file });
    expect(fs.readFileSync(file, 'utf8')).toBe(svg);
    const grid = layoutAttentionGrid(values, { keyTokens: keys, queryTokens: queries, title: 'a < b' });
    expect(svg).toMatch(new RegExp(`^<svg xmlns="http://www.w3.org/2000/svg"[^>]* width="${grid.width}" height="${grid.height}"`));
    expect(svg).toContain('<title>a &lt; b</title>');
    for (const label of ['head 1', 'layer 1', 'AE1', '&lt;/s&gt;', 'attention weight']) expect(svg).toContain(`>${label}</text>`);
    const cells = [...svg.matchAll(/<rect x="([\d.]+)" y="([\d.]+)" width="(\d+)" height="\d+" fill="(#[0-9a-f]{6})"\/>/g)];
    expect(cells).toHaveLength(2 * 3 * 4 * 5);
    const [x, y] = cellCentre(grid, 1, 0, 2, 3).map((v) => v - grid.cellSize / 2);
    const cell = cells.find((c) => Number(c[1]) === x && Number(c[2]) === y) as RegExpMatchArray;
    const hex = (rgb: number[]) => `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
    expect(cell[4]).toBe(hex(heatmapColor(0.8, 'sequential', 0, 0.8))); // layer 1's diagonal is one key later
    const opened = (svg.match(/<(svg|g|text|defs|linearGradient|title)\b/g) ?? []).length;
    const closed = (svg.match(/<\/(svg|g|text|defs|linearGradient|title)>/g) ?? []).length;
    expect(opened).toBe(closed);
  });

  it('embeds one image per panel when the grid has more than 40 000 cells', async () => {
    const big = [Array.from({ length: 3 }, () => Array.from({ length: 120 }, () => new Array<number>(120).fill(0.5)))];
    const svg = await renderAttentionGridSvg(big);
    expect((svg.match(/<image /g) ?? []).length).toBe(3);
    expect(svg).not.toMatch(/<rect x="[\d.]+" y="[\d.]+" width="\d+" height="\d+" fill="#/);
  });
});

describe('attention grid errors', () => {
  const values = patterns();
  it.each([
    ['no layers', [], MieShapeError, 'renderAttentionGrid: argument "patterns" must be a non-empty array of layers'],
    ['a layer without heads', [[]], MieShapeError, 'must be [layer][head][query][key] with at least one head, query and key'],
    ['ragged heads', [values[0], values[1].slice(1)], MieShapeError, 'must be rectangular: layer 0 has 3 heads, layer 1 differs. Received: "2 heads".'],
    ['ragged keys', [[[[0.5, 0.5], [1]]]], MieShapeError, 'every query row has 2 keys, layer 0 head 0 query 1 differs'],
    ['a weight above 1', [[[[0.5, 1.5]]]], MieShapeError, 'must hold attention weights in [0, 1]; layer 0 head 0 query 0 key 1 is not. Received: 1.5.'],
    ['a negative weight', [[[[-0.1, 1]]]], MieShapeError, 'key 0 is not. Received: -0.1.'],
    ['NaN', [[[[Number.NaN]]]], MieShapeError, 'Received: NaN.'],
    ['a string', [[[['0.5']]]], MieShapeError, 'Received: "0.5".'],
  ])('rejects %s', async (_label, patternsGiven, type, message) => {
    await expect(renderAttentionGrid(patternsGiven as never)).rejects.toThrow(type);
    await expect(renderAttentionGrid(patternsGiven as never)).rejects.toThrow(message);
    expect(() => layoutAttentionGrid(patternsGiven as never)).toThrow(message.replace('renderAttentionGrid', 'layoutAttentionGrid'));
  });

  it('rejects bad tensors, mixed lists and bad options, naming the function and the argument', async () => {
    const t = tf.tensor3d(values[0]);
    const disposed = tf.tensor3d(values[0]);
    disposed.dispose();
    const cases: Array<[unknown, object, typeof MieShapeError | typeof MieConfigError, string]> = [
      [[tf.zeros([2, 3, 4, 5]) as tf.Tensor], {}, MieShapeError, 'one live numeric tensor [1, heads, q, k] or [heads, q, k] per layer; layer 0 is not. Received: tensor float32[2, 3, 4, 5].'],
      [[t, tf.zeros([4, 5]) as tf.Tensor], {}, MieShapeError, 'layer 1 is not'],
      [[t, tf.zeros([3, 4, 6]) as tf.Tensor], {}, MieShapeError, 'layer 0 has [heads, q, k] = [3, 4, 5], layer 1 differs'],
      [[disposed], {}, MieShapeError, 'layer 0 is not'],
      [[t, values[1]], {}, MieShapeError, 'must be all tensors (one per layer) or all nested arrays, not a mix'],
      [[tf.fill([1, 2, 2], 2)], {}, MieShapeError, 'must hold attention weights in [0, 1]; layer 0 head 0 query 0 key 0 is not. Received: 2.'],
      [values, { keyTokens: ['a'] }, MieShapeError, 'option "keyTokens" must hold one label per key position of the patterns (5). Received: "1 labels".'],
      [values, { queryTokens: [1, 2, 3, 4] }, MieConfigError, 'option "queryTokens" must be an array of strings'],
      [values, { layerNames: ['only one'] }, MieShapeError, 'option "layerNames" must hold one label per layer of the patterns (2)'],
      [values, { cellSize: 0 }, MieConfigError, 'option "cellSize" must be an integer in [1, 200]. Received: 0.'],
      [values, { vmin: 0.5, vmax: 0.5 }, MieConfigError, 'option "vmax" must be greater than vmin (0.5). Received: 0.5.'],
      [values, { colorMap: 'jet' }, MieConfigError, "option \"colorMap\" must be 'diverging', 'sequential' or 'cyclic'"],
      [values, { head: 0 }, MieConfigError, 'renderAttentionGrid: unknown option "head"'],
    ];
    const start = tf.memory().numTensors;
    for (const [given, options, type, message] of cases) {
      await expect(renderAttentionGrid(given as never, options)).rejects.toThrow(type);
      await expect(renderAttentionGrid(given as never, options)).rejects.toThrow(message);
    }
    await expect(renderAttentionGridSvg(values, { fontSize: 1.5 })).rejects.toThrow('renderAttentionGridSvg: option "fontSize" must be an integer in [1, 200]');
    expect(tf.memory().numTensors).toBe(start);
    tf.dispose([t, ...cases.flatMap(([given]) => (Array.isArray(given) ? given.filter((g): g is tf.Tensor => g instanceof tf.Tensor && g !== t) : []))]);
  });
});
