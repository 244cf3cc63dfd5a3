/**
 * Every attention pattern of one input at once: a grid of small heatmaps, one row per layer and one
 * column per head, each with key (source) positions along x and query (target) positions down y.
 * This is bertviz's "model view" (Vig, 2019) as a still picture: heads that align positions show a
 * diagonal, heads that look at one token a bright column, uniform heads an even colour.
 *
 * Legend: l layers, h heads, q query length, k key length.
 */
import { MieConfigError, MieShapeError, checkOptions, errorMessage, hostValues, tf, type ColorMapName } from '@mie/core';
import {
  ASCENT, COLORBAR_GAP, COLORBAR_WIDTH, COLOR_MAPS, DESCENT, FRAME_COLOR, LABEL_GAP, PAD, SVG_FONT_FAMILY, TEXT_COLOR, TICK, TICK_GAP,
  centredText, colorbarTickValues, cssColor, drawColorbar, drawTexts, escapeXml, fillRect, frame, heatmapColor, horizontalText, round,
  svgColorbarGradient, svgTexts, verticalLeftFor, verticalText, type HeatmapRect, type HeatmapText,
} from './drawing';
import { base64, encodePng, makeRaster, textWidth, writeOutput } from './raster';

/**
 * The patterns of {@link renderAttentionGrid}: `[layer][head][query][key]` weights in [0, 1] as plain
 * arrays, or one tensor per layer, `[1, heads, q, k]` or `[heads, q, k]` (the caller keeps and
 * disposes the tensors).
 */
export type AttentionPatterns = number[][][][] | readonly tf.Tensor[];

/** Options of {@link renderAttentionGrid} and {@link renderAttentionGridSvg}. */
export interface AttentionGridOptions {
  /** One label per query position, drawn beside the first panel of each row when the cells are tall enough. Default: none. */
  queryTokens?: string[];
  /** One label per key position, drawn under the bottom panels when the cells are wide enough (vertical when a label is wider than a cell). Default: none. */
  keyTokens?: string[];
  /** One label per layer (row). Default `'layer 0'`, `'layer 1'`, ... */
  layerNames?: string[];
  /** Title above the grid. Default: none. */
  title?: string;
  /**
   * Pixels per query/key cell. Default: panels of about 192 pixels (less with many heads), at
   * least `fontSize + 2` when tokens are given for at most 40 positions, so that they are shown.
   */
  cellSize?: number;
  /** Font size of labels in pixels; the title is 1.25 times larger. Default 12. */
  fontSize?: number;
  /** Colour map, shared by every panel. Default `'sequential'` (viridis, dark to yellow). */
  colorMap?: ColorMapName;
  /** Weight drawn with the lowest colour. Default 0. */
  vmin?: number;
  /** Weight drawn with the highest colour. Default: the largest weight in the grid. */
  vmax?: number;
  /** Label beside the colour bar. Default `'attention weight'`. */
  colorbarLabel?: string;
  /** When given, the picture is also written to this path (Node). */
  file?: string;
}

/** Where {@link renderAttentionGrid} and {@link renderAttentionGridSvg} put everything. */
export interface AttentionGridLayout {
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** Rows of panels. */
  layers: number;
  /** Columns of panels. */
  heads: number;
  /** Query positions (rows of each panel). */
  queries: number;
  /** Key positions (columns of each panel). */
  keys: number;
  /** Pixels per cell, both ways. */
  cellSize: number;
  /** `panels[layer][head]`: query `q`, key `k` covers `x + k * cellSize`, `y + q * cellSize`. */
  panels: HeatmapRect[][];
  /** The colour bar: `vmax` at the top, `vmin` at the bottom. */
  colorbar: HeatmapRect;
  /** The colour map. */
  colorMap: ColorMapName;
  /** The weight drawn with the lowest colour. */
  vmin: number;
  /** The weight drawn with the highest colour. */
  vmax: number;
  /** Whether the query tokens are drawn (given, and the cells tall enough). */
  queryTokensShown: boolean;
  /** Whether the key tokens are drawn (given, and the cells wide enough). */
  keyTokensShown: boolean;
  /** Colour bar ticks (`position` is a pixel y). */
  colorbarTicks: Array<{ position: number; label: string }>;
  /** Every piece of text: title, head and layer names, tokens, colour bar labels. */
  texts: HeatmapText[];
}

const OPTION_KEYS = [
  'queryTokens', 'keyTokens', 'layerNames', 'title', 'cellSize', 'fontSize', 'colorMap', 'vmin', 'vmax', 'colorbarLabel', 'file',
] as const;
const PANEL_GAP = 8;
/** Above this many cells the SVG carries each panel as an embedded image instead of one `<rect>` per cell. */
const SVG_RECT_LIMIT = 40_000;
/** Softmax in float32 may overshoot 1 by a few ulps. */
const TOLERANCE = 1e-5;

function shapeError(name: string, expected: string, received: unknown): MieShapeError {
  return new MieShapeError(errorMessage(name, 'argument "patterns"', expected, received));
}

/** Checks that every weight is a number in [0, 1] and the grid is rectangular; returns its sizes. */
function checkPatternArrays(name: string, patterns: unknown): { layers: number; heads: number; queries: number; keys: number } {
  const nonEmpty = (value: unknown): value is unknown[] => Array.isArray(value) && value.length > 0;
  if (!nonEmpty(patterns)) throw shapeError(name, 'must be a non-empty array of layers, [layer][head][query][key], or of tensors', patterns);
  const first = patterns[0];
  if (!nonEmpty(first) || !nonEmpty(first[0]) || !nonEmpty((first[0] as unknown[])[0])) {
    throw shapeError(name, 'must be [layer][head][query][key] with at least one head, query and key', first);
  }
  const heads = first.length;
  const queries = (first[0] as unknown[]).length;
  const keys = ((first[0] as unknown[][])[0] as unknown[]).length;
  patterns.forEach((layer, l) => {
    if (!Array.isArray(layer) || layer.length !== heads) {
      throw shapeError(name, `must be rectangular: layer 0 has ${heads} heads, layer ${l} differs`, Array.isArray(layer) ? `${layer.length} heads` : layer);
    }
    layer.forEach((head: unknown, h) => {
      if (!Array.isArray(head) || head.length !== queries) {
        throw shapeError(name, `must be rectangular: every head has ${queries} query rows, layer ${l} head ${h} differs`, Array.isArray(head) ? `${head.length} rows` : head);
      }
      head.forEach((row: unknown, q) => {
        if (!Array.isArray(row) || row.length !== keys) {
          throw shapeError(name, `must be rectangular: every query row has ${keys} keys, layer ${l} head ${h} query ${q} differs`, Array.isArray(row) ? `${row.length} keys` : row);
        }
        for (let k = 0; k < keys; k++) {
          const w: unknown = row[k];
          if (typeof w !== 'number' || !(w >= -TOLERANCE && w <= 1 + TOLERANCE)) {
            throw shapeError(name, `must hold attention weights in [0, 1]; layer ${l} head ${h} query ${q} key ${k} is not`, w);
          }
        }
      });
    });
  });
  return { layers: patterns.length, heads, queries, keys };
}

/** The weights of one tensor per layer as `[head][query][key]` arrays (read asynchronously, no tensor made). */
async function readPatternTensors(name: string, tensors: readonly tf.Tensor[]): Promise<number[][][][]> {
  let expected: number[] | undefined;
  const layers: number[][][][] = [];
  for (const [l, tensor] of tensors.entries()) {
    const live = tensor instanceof tf.Tensor && !tensor.isDisposed && tensor.dtype !== 'string' && tensor.dtype !== 'complex64';
    if (!live || !(tensor.rank === 3 || (tensor.rank === 4 && tensor.shape[0] === 1))) {
      throw shapeError(name, `must hold one live numeric tensor [1, heads, q, k] or [heads, q, k] per layer; layer ${l} is not`, tensor);
    }
    const [heads, queries, keys] = tensor.shape.slice(-3);
    if (expected === undefined) expected = [heads, queries, keys];
    else if (expected.some((size, i) => size !== [heads, queries, keys][i])) {
      throw shapeError(name, `must hold tensors of one shape: layer 0 has [heads, q, k] = [${expected.join(', ')}], layer ${l} differs`, tensor);
    }
    if (heads * queries * keys === 0) throw shapeError(name, `must hold at least one head, query and key; layer ${l} is empty`, tensor);
    // Host-resident values without a copy through the GPU; else one asynchronous download.
    const values = hostValues(tensor) ?? (await tensor.data());
    layers.push(
      Array.from({ length: heads }, (_, h) =>
        Array.from({ length: queries }, (__, q) => Array.from(values.subarray((h * queries + q) * keys, (h * queries + q + 1) * keys) as ArrayLike<number>)),
      ),
    );
  }
  return layers;
}

/** The patterns as `[layer][head][query][key]` arrays, checked: arrays as they are, tensors read. */
async function patternArrays(name: string, patterns: AttentionPatterns): Promise<number[][][][]> {
  if (Array.isArray(patterns) && patterns.length > 0 && patterns.every((p) => p instanceof tf.Tensor)) {
    const arrays = await readPatternTensors(name, patterns as readonly tf.Tensor[]);
    checkPatternArrays(name, arrays);
    return arrays;
  }
  if (Array.isArray(patterns) && patterns.some((p) => p instanceof tf.Tensor)) {
    throw shapeError(name, 'must be all tensors (one per layer) or all nested arrays, not a mix', patterns);
  }
  checkPatternArrays(name, patterns);
  return patterns as number[][][][];
}

function fail(name: string, option: string, expected: string, received: unknown): never {
  throw new MieConfigError(errorMessage(name, `option "${option}"`, expected, received));
}

function checkLabels(name: string, option: string, labels: unknown, count: number, what: string): string[] | undefined {
  if (labels === undefined) return undefined;
  if (!Array.isArray(labels) || !labels.every((label) => typeof label === 'string')) fail(name, option, 'must be an array of strings', labels);
  if (labels.length !== count) {
    throw new MieShapeError(errorMessage(name, `option "${option}"`, `must hold one label per ${what} of the patterns (${count})`, `${labels.length} labels`));
  }
  return labels;
}

function checkGridOptions(name: string, options: AttentionGridOptions): void {
  checkOptions(name, options, OPTION_KEYS);
  for (const option of ['cellSize', 'fontSize'] as const) {
    const value = options[option];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= 200)) fail(name, option, 'must be an integer in [1, 200]', value);
  }
  if (options.colorMap !== undefined && !Object.keys(COLOR_MAPS).includes(options.colorMap)) {
    fail(name, 'colorMap', "must be 'diverging', 'sequential' or 'cyclic'", options.colorMap);
  }
  for (const option of ['vmin', 'vmax'] as const) {
    if (options[option] !== undefined && !Number.isFinite(options[option])) fail(name, option, 'must be a finite number', options[option]);
  }
  for (const option of ['title', 'colorbarLabel', 'file'] as const) {
    if (options[option] !== undefined && typeof options[option] !== 'string') fail(name, option, 'must be a string', options[option]);
  }
}

/**
 * Computes where everything of the grid goes: panels, labels, colour bar. The patterns are
 * `[layer][head][query][key]` arrays (read tensors first, or let the renderers do it).
 */
export function layoutAttentionGrid(patterns: number[][][][], options: AttentionGridOptions = {}): AttentionGridLayout {
  return layout('layoutAttentionGrid', patterns, options);
}

function layout(name: string, patterns: number[][][][], options: AttentionGridOptions): AttentionGridLayout {
  checkGridOptions(name, options);
  const { layers, heads, queries, keys } = checkPatternArrays(name, patterns);
  const queryTokens = checkLabels(name, 'queryTokens', options.queryTokens, queries, 'query position');
  const keyTokens = checkLabels(name, 'keyTokens', options.keyTokens, keys, 'key position');
  const layerNames = checkLabels(name, 'layerNames', options.layerNames, layers, 'layer') ?? Array.from({ length: layers }, (_, l) => `layer ${l}`);

  const colorMap = options.colorMap ?? 'sequential';
  let largest = 0;
  for (const layer of patterns) for (const head of layer) for (const row of head) for (const w of row) if (w > largest) largest = w;
  const vmin = options.vmin ?? 0;
  // All-zero patterns (or a vmin above every weight) still get a usable scale.
  const vmax = options.vmax ?? (largest > vmin ? largest : vmin + 1);
  if (!(vmax > vmin)) fail(name, 'vmax', `must be greater than vmin (${vmin})`, options.vmax);

  const size = options.fontSize ?? 12;
  const titleSize = Math.round(size * 1.25);
  const line = Math.ceil(size * (ASCENT + DESCENT));
  const longest = Math.max(queries, keys);
  const panelTarget = Math.min(192, Math.max(64, Math.floor(960 / heads)));
  let cellSize = options.cellSize ?? Math.min(24, Math.max(2, Math.floor(panelTarget / longest)));
  if (options.cellSize === undefined && (queryTokens || keyTokens) && longest <= 40) cellSize = Math.max(cellSize, size + 2);
  const panelWidth = keys * cellSize;
  const panelHeight = queries * cellSize;

  // Tokens only where they fit: one text line per query row; keys horizontal, else upright.
  const most = (values: number[]): number => values.reduce((a, b) => Math.max(a, b), 0);
  const queryTokensShown = queryTokens !== undefined && cellSize >= size;
  const keyWidest = keyTokens ? most(keyTokens.map((t) => textWidth(t, size))) : 0;
  const keyHorizontal = keyWidest + 2 <= cellSize;
  const keyTokensShown = keyTokens !== undefined && (keyHorizontal || cellSize >= size);
  const queryBand = queryTokensShown ? Math.ceil(most((queryTokens as string[]).map((t) => textWidth(t, size)))) + TICK_GAP : 0;
  const keyBand = keyTokensShown ? TICK_GAP + (keyHorizontal ? line : Math.ceil(keyWidest)) : 0;
  const layerBand = Math.ceil(most(layerNames.map((n) => textWidth(n, size)))) + LABEL_GAP;
  const headName = (h: number): string => (textWidth(`head ${heads - 1}`, size) <= panelWidth + PANEL_GAP ? `head ${h}` : String(h));

  // Horizontal: pad | layer names | query tokens | panels | colour bar | its ticks | its label | pad.
  const gridX = PAD + layerBand + queryBand;
  const gridWidth = heads * panelWidth + (heads - 1) * PANEL_GAP;
  const colorbarX = gridX + gridWidth + COLORBAR_GAP;
  const { values: tickValues, labels: tickLabels } = colorbarTickValues(vmin, vmax);
  const colorbarTickBand = Math.ceil(most(tickLabels.map((l) => textWidth(l, size))));
  const colorbarLabelX = colorbarX + COLORBAR_WIDTH + TICK + TICK_GAP + colorbarTickBand + LABEL_GAP;
  const colorbarLabel = options.colorbarLabel ?? 'attention weight';
  const titleWidth = options.title ? textWidth(options.title, titleSize, true) : 0;
  const width = Math.ceil(Math.max((colorbarLabel ? colorbarLabelX + line : colorbarLabelX - LABEL_GAP) + PAD, titleWidth + 2 * PAD));

  // Vertical: pad | title | head names | panels | key tokens | pad; the colour bar beside the panels.
  const titleBand = options.title ? Math.ceil(titleSize * (ASCENT + DESCENT)) + LABEL_GAP : 0;
  const gridY = PAD + titleBand + line + TICK_GAP;
  const gridHeight = layers * panelHeight + (layers - 1) * PANEL_GAP;
  const colorbarHeight = Math.min(320, Math.max(100, gridHeight));
  const height = Math.ceil(Math.max(gridY + gridHeight + keyBand, gridY + colorbarHeight) + PAD);

  const panels = Array.from({ length: layers }, (_, l) =>
    Array.from({ length: heads }, (__, h) => ({ x: gridX + h * (panelWidth + PANEL_GAP), y: gridY + l * (panelHeight + PANEL_GAP), width: panelWidth, height: panelHeight })),
  );
  const texts: HeatmapText[] = [];
  if (options.title) {
    const centre = Math.min(Math.max(gridX + gridWidth / 2, PAD + titleWidth / 2), width - PAD - titleWidth / 2);
    texts.push(horizontalText(options.title, centre, PAD, 'middle', titleSize, true));
  }
  for (let h = 0; h < heads; h++) texts.push(horizontalText(headName(h), panels[0][h].x + panelWidth / 2, PAD + titleBand, 'middle', size));
  for (let l = 0; l < layers; l++) {
    const panel = panels[l][0];
    texts.push(centredText(layerNames[l], PAD + layerBand - LABEL_GAP, panel.y + panelHeight / 2, 'end', size));
    if (queryTokensShown) {
      for (let q = 0; q < queries; q++) texts.push(centredText((queryTokens as string[])[q], panel.x - TICK_GAP, panel.y + (q + 0.5) * cellSize, 'end', size));
    }
  }
  if (keyTokensShown) {
    const top = gridY + gridHeight + TICK_GAP;
    for (const panel of panels[layers - 1]) {
      for (let k = 0; k < keys; k++) {
        const centre = panel.x + (k + 0.5) * cellSize;
        const token = (keyTokens as string[])[k];
        texts.push(keyHorizontal ? horizontalText(token, centre, top, 'middle', size) : verticalText(token, verticalLeftFor(centre, size), top, 'end', size));
      }
    }
  }
  const colorbarTicks = tickValues.map((v, i) => ({ position: gridY + ((vmax - v) / (vmax - vmin)) * colorbarHeight, label: tickLabels[i] }));
  for (const tick of colorbarTicks) texts.push(centredText(tick.label, colorbarX + COLORBAR_WIDTH + TICK + TICK_GAP, tick.position, 'start', size));
  if (colorbarLabel) texts.push(verticalText(colorbarLabel, colorbarLabelX, gridY + colorbarHeight / 2, 'middle', size));

  return {
    width,
    height,
    layers,
    heads,
    queries,
    keys,
    cellSize,
    panels,
    colorbar: { x: colorbarX, y: gridY, width: COLORBAR_WIDTH, height: colorbarHeight },
    colorMap,
    vmin,
    vmax,
    queryTokensShown,
    keyTokensShown,
    colorbarTicks,
    texts,
  };
}

function drawPng(patterns: number[][][][], grid: AttentionGridLayout): Promise<Uint8Array> {
  const { cellSize, colorMap, vmin, vmax } = grid;
  const bitmap = makeRaster(grid.width, grid.height);
  bitmap.data.fill(255);
  patterns.forEach((layer, l) =>
    layer.forEach((head, h) => {
      const panel = grid.panels[l][h];
      head.forEach((row, q) => row.forEach((w, k) => fillRect(bitmap, panel.x + k * cellSize, panel.y + q * cellSize, cellSize, cellSize, heatmapColor(w, colorMap, vmin, vmax))));
      frame(bitmap, panel, FRAME_COLOR);
    }),
  );
  drawColorbar(bitmap, grid.colorbar, colorMap, vmin, vmax, grid.colorbarTicks.map((t) => t.position));
  drawTexts(bitmap, grid.texts);
  return bitmap.png();
}

async function drawSvg(patterns: number[][][][], grid: AttentionGridLayout, title: string | undefined): Promise<string> {
  const { cellSize, colorMap, vmin, vmax, queries, keys, colorbar } = grid;
  const asRects = grid.layers * grid.heads * queries * keys <= SVG_RECT_LIMIT;
  const cells: string[] = [];
  for (const [l, layer] of patterns.entries()) {
    for (const [h, head] of layer.entries()) {
      const panel = grid.panels[l][h];
      if (asRects) {
        // One <rect> per cell: each weight stays inspectable (and editable) in the document.
        head.forEach((row, q) =>
          row.forEach((w, k) => {
            cells.push(`<rect x="${panel.x + k * cellSize}" y="${panel.y + q * cellSize}" width="${cellSize}" height="${cellSize}" fill="${cssColor(heatmapColor(w, colorMap, vmin, vmax))}"/>`);
          }),
        );
      } else {
        // Large grids: one pixel per cell in an embedded PNG per panel, as the heatmap's SVG does.
        const rgba = new Uint8Array(queries * keys * 4);
        head.forEach((row, q) => row.forEach((w, k) => rgba.set([...heatmapColor(w, colorMap, vmin, vmax), 255], (q * keys + k) * 4)));
        const uri = `data:image/png;base64,${base64(await encodePng(rgba, keys, queries))}`;
        cells.push(`<image x="${panel.x}" y="${panel.y}" width="${panel.width}" height="${panel.height}" preserveAspectRatio="none" image-rendering="optimizeSpeed" style="image-rendering:pixelated" xlink:href="${uri}"/>`);
      }
    }
  }
  const frames = grid.panels.flat().map((p) => `<rect x="${p.x - 0.5}" y="${p.y - 0.5}" width="${p.width + 1}" height="${p.height + 1}"/>`);
  const ticks = grid.colorbarTicks.map((t) => `M${colorbar.x + colorbar.width + 0.5} ${round(t.position)}h${TICK}`).join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${grid.width}" height="${grid.height}" viewBox="0 0 ${grid.width} ${grid.height}">`,
    title ? `<title>${escapeXml(title)}</title>` : '',
    `<defs>${svgColorbarGradient(colorMap)}</defs>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<g shape-rendering="crispEdges">`,
    ...cells,
    '</g>',
    `<rect x="${colorbar.x}" y="${colorbar.y}" width="${colorbar.width}" height="${colorbar.height}" fill="url(#colorbar)"/>`,
    `<g fill="none" stroke="${cssColor(FRAME_COLOR)}" stroke-width="1">`,
    ...frames,
    `<rect x="${colorbar.x - 0.5}" y="${colorbar.y - 0.5}" width="${colorbar.width + 1}" height="${colorbar.height + 1}"/>`,
    `<path d="${ticks}"/></g>`,
    `<g font-family="${SVG_FONT_FAMILY}" fill="${cssColor(TEXT_COLOR)}">`,
    ...svgTexts(grid.texts),
    '</g></svg>',
  ]
    .filter((part) => part !== '')
    .join('\n');
}

/**
 * Draws every layer x head attention pattern of one input as a grid of heatmaps (bertviz's model
 * view): layers down, heads across, keys along each panel's x axis and queries down its y axis, on
 * one colour scale from `vmin` (0) to the largest weight, with a colour bar. `patterns` is
 * `[layer][head][query][key]` arrays or one tensor `[1, heads, q, k]` / `[heads, q, k]` per layer
 * (read asynchronously; the caller keeps and disposes them). Resolves to the PNG bytes, also
 * written to `options.file` when given. Bad patterns are a `MieShapeError`, bad options a
 * `MieConfigError` (label counts that do not match the patterns: `MieShapeError`).
 *
 * ```ts
 * const patterns = out.crossAttention; // forward(src, tgt, { returnAttention: true }): [b, h, t, s] per layer
 * await renderAttentionGrid(patterns, { keyTokens: letters, queryTokens: phonemes, file: 'cross.png' });
 * ```
 */
export async function renderAttentionGrid(patterns: AttentionPatterns, options: AttentionGridOptions = {}): Promise<Uint8Array> {
  const name = 'renderAttentionGrid';
  checkGridOptions(name, options);
  const arrays = await patternArrays(name, patterns);
  const bytes = await drawPng(arrays, layout(name, arrays, options));
  if (options.file !== undefined) await writeOutput(options.file, bytes);
  return bytes;
}

/**
 * {@link renderAttentionGrid} as an SVG document: one `<rect>` per cell (an embedded image per
 * panel above 40 000 cells), vector text. Resolves to the SVG text, also written to `options.file`.
 */
export async function renderAttentionGridSvg(patterns: AttentionPatterns, options: AttentionGridOptions = {}): Promise<string> {
  const name = 'renderAttentionGridSvg';
  checkGridOptions(name, options);
  const arrays = await patternArrays(name, patterns);
  const svg = await drawSvg(arrays, layout(name, arrays, options), options.title);
  if (options.file !== undefined) await writeOutput(options.file, svg);
  return svg;
}
