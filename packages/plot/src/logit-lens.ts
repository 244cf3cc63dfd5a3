/**
 * The logit-lens table (nostalgebraist, 2020): what a model would predict if it stopped after each
 * layer. One row per layer (the caller's last row is usually the model's real output), one column
 * per position, each cell the top-1 token decoded from that layer's hidden state with its
 * probability, shaded by the probability (viridis, 0 dark to 1 yellow; the text in white or black,
 * whichever reads better on it).
 */
import { MieConfigError, MieShapeError, checkOptions, errorMessage } from '@mie/core';
import {
  ASCENT, COLORBAR_GAP, COLORBAR_WIDTH, DESCENT, FRAME_COLOR, LABEL_GAP, PAD, SVG_FONT_FAMILY, TEXT_COLOR, TICK, TICK_GAP,
  centredText, colorbarTickValues, cssColor, drawColorbar, drawTexts, escapeXml, fillRect, fitText, frame, heatmapColor, horizontalText,
  round, svgColorbarGradient, svgTexts, textColorOn, verticalText, type HeatmapRect, type HeatmapText, type Rgb,
} from './drawing';
import { textWidth, makeRaster, writeOutput } from './raster';

/** One cell of a {@link LogitLensTable}: the top-1 token and its probability. */
export interface LogitLensCell {
  /** The predicted token's text. */
  token: string;
  /** Its probability, in [0, 1]. */
  probability: number;
}

/** What {@link renderLogitLens} draws. */
export interface LogitLensTable {
  /** One name per row, top to bottom: the layers, usually followed by `'output'`. */
  layers: string[];
  /** One label per column: the input token at each position. */
  positions: string[];
  /** `cells[layer][position]`: `layers.length` rows of `positions.length` cells. */
  cells: LogitLensCell[][];
}

/** Options of {@link renderLogitLens} and {@link renderLogitLensSvg}. */
export interface LogitLensOptions {
  /** Title above the table. Default: none. */
  title?: string;
  /** Font size of the tokens and labels in pixels (probabilities 0.85 times, the title 1.25 times). Default 12. */
  fontSize?: number;
  /** Pixels per column. Default: the widest token or position label plus a margin, in [48, 160]. */
  cellWidth?: number;
  /** Pixels per row. Default: two lines of text (token and probability) plus a margin. */
  cellHeight?: number;
  /** When given, the picture is also written to this path (Node). */
  file?: string;
}

/** One drawn cell: its rectangle, colours and two lines of text. */
export interface LogitLensCellLayout {
  /** The shaded rectangle. */
  rect: HeatmapRect;
  /** Its colour, RGB: `heatmapColor(probability, 'sequential', 0, 1)`. */
  fill: [number, number, number];
  /** The colour of its text, RGB. */
  textColor: [number, number, number];
  /** The token (cut with an ellipsis when wider than the cell). */
  token: HeatmapText;
  /** The probability, two decimals. */
  probability: HeatmapText;
}

/** Where {@link renderLogitLens} and {@link renderLogitLensSvg} put everything. */
export interface LogitLensLayout {
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** Rows (layers). */
  rows: number;
  /** Columns (positions). */
  columns: number;
  /** Pixels per column. */
  cellWidth: number;
  /** Pixels per row. */
  cellHeight: number;
  /** The table: column `c`, row `r` covers `x + c * cellWidth`, `y + r * cellHeight`. */
  plot: HeatmapRect;
  /** `cells[layer][position]`. */
  cells: LogitLensCellLayout[][];
  /** The colour bar, probability 1 at the top and 0 at the bottom. */
  colorbar: HeatmapRect;
  /** Colour bar ticks (`position` is a pixel y). */
  colorbarTicks: Array<{ position: number; label: string }>;
  /** The text outside the cells: title, layer names, position labels, colour bar labels. */
  texts: HeatmapText[];
}

const OPTION_KEYS = ['title', 'fontSize', 'cellWidth', 'cellHeight', 'file'] as const;
const TOLERANCE = 1e-5;
/** Gap between cells, in pixels: white, so that neighbouring cells of one colour stay apart. */
const GUTTER = 1;

function tableError(name: string, expected: string, received: unknown): MieShapeError {
  return new MieShapeError(errorMessage(name, 'argument "table"', expected, received));
}

function fail(name: string, option: string, expected: string, received: unknown): never {
  throw new MieConfigError(errorMessage(name, `option "${option}"`, expected, received));
}

function checkTable(name: string, table: unknown): LogitLensTable {
  if (typeof table !== 'object' || table === null || Array.isArray(table)) {
    throw tableError(name, 'must be an object { layers, positions, cells }', table);
  }
  const { layers, positions, cells } = table as Partial<Record<keyof LogitLensTable, unknown>>;
  for (const [field, labels] of [['layers', layers], ['positions', positions]] as const) {
    if (!Array.isArray(labels) || labels.length === 0 || !labels.every((label) => typeof label === 'string')) {
      throw tableError(name, `field "${field}" must be a non-empty array of strings`, labels);
    }
  }
  const [rows, columns] = [(layers as string[]).length, (positions as string[]).length];
  if (!Array.isArray(cells) || cells.length !== rows) {
    throw tableError(name, `field "cells" must hold one row per layer (${rows})`, Array.isArray(cells) ? `${cells.length} rows` : cells);
  }
  cells.forEach((row: unknown, r) => {
    if (!Array.isArray(row) || row.length !== columns) {
      throw tableError(name, `field "cells" must be rectangular: one cell per position (${columns}) in every row, row ${r} differs`, Array.isArray(row) ? `${row.length} cells` : row);
    }
    row.forEach((cell: unknown, c) => {
      const { token, probability } = (typeof cell === 'object' && cell !== null ? cell : {}) as Partial<Record<keyof LogitLensCell, unknown>>;
      if (typeof token !== 'string') throw tableError(name, `field "cells" must hold { token: string, probability }; cell [${r}][${c}] has no token string`, cell);
      if (typeof probability !== 'number' || !(probability >= -TOLERANCE && probability <= 1 + TOLERANCE)) {
        throw tableError(name, `field "cells" must hold probabilities in [0, 1]; cell [${r}][${c}] (token ${JSON.stringify(token)}) is not`, probability);
      }
    });
  });
  return table as LogitLensTable;
}

function checkLensOptions(name: string, options: LogitLensOptions): void {
  checkOptions(name, options, OPTION_KEYS);
  for (const [option, max] of [['fontSize', 200], ['cellWidth', 1000], ['cellHeight', 1000]] as const) {
    const value = options[option];
    if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= max)) fail(name, option, `must be an integer in [1, ${max}]`, value);
  }
  for (const option of ['title', 'file'] as const) {
    if (options[option] !== undefined && typeof options[option] !== 'string') fail(name, option, 'must be a string', options[option]);
  }
}

/** A token as drawn: blank ones (a space, a newline) quoted, so that they are visible. */
function visibleToken(token: string): string {
  return token.trim() === '' ? JSON.stringify(token) : token;
}

/** Computes where everything of the table goes: cells and their text, labels, colour bar. */
export function layoutLogitLens(table: LogitLensTable, options: LogitLensOptions = {}): LogitLensLayout {
  return layout('layoutLogitLens', table, options);
}

function layout(name: string, given: LogitLensTable, options: LogitLensOptions): LogitLensLayout {
  checkLensOptions(name, options);
  const table = checkTable(name, given);
  const rows = table.layers.length;
  const columns = table.positions.length;
  const size = options.fontSize ?? 12;
  const smallSize = Math.max(1, Math.round(size * 0.85));
  const titleSize = Math.round(size * 1.25);
  const line = Math.ceil(size * (ASCENT + DESCENT));
  const smallLine = Math.ceil(smallSize * (ASCENT + DESCENT));
  const most = (values: number[]): number => values.reduce((a, b) => Math.max(a, b), 0);
  const widest = most([...table.positions, ...table.cells.flat().map((cell) => visibleToken(cell.token))].map((t) => textWidth(t, size)));
  const cellWidth = options.cellWidth ?? Math.min(160, Math.max(48, Math.ceil(widest) + 10));
  const cellHeight = options.cellHeight ?? line + smallLine + 8;
  const plotWidth = columns * cellWidth;
  const plotHeight = rows * cellHeight;

  // Horizontal: pad | layer names | table | colour bar | its ticks | its label | pad.
  const layerBand = Math.ceil(most(table.layers.map((n) => textWidth(n, size)))) + LABEL_GAP;
  const plotX = PAD + layerBand;
  const colorbarX = plotX + plotWidth + COLORBAR_GAP;
  const { values: tickValues, labels: tickLabels } = colorbarTickValues(0, 1);
  const colorbarLabelX = colorbarX + COLORBAR_WIDTH + TICK + TICK_GAP + Math.ceil(most(tickLabels.map((l) => textWidth(l, size)))) + LABEL_GAP;
  const titleWidth = options.title ? textWidth(options.title, titleSize, true) : 0;
  const width = Math.ceil(Math.max(colorbarLabelX + line + PAD, titleWidth + 2 * PAD));

  // Vertical: pad | title | position labels | table | pad; the colour bar beside the table.
  const titleBand = options.title ? Math.ceil(titleSize * (ASCENT + DESCENT)) + LABEL_GAP : 0;
  const plotY = PAD + titleBand + line + TICK_GAP;
  const colorbarHeight = Math.min(320, Math.max(100, plotHeight));
  const height = Math.ceil(plotY + Math.max(plotHeight, colorbarHeight) + PAD);

  const texts: HeatmapText[] = [];
  if (options.title) {
    const centre = Math.min(Math.max(plotX + plotWidth / 2, PAD + titleWidth / 2), width - PAD - titleWidth / 2);
    texts.push(horizontalText(options.title, centre, PAD, 'middle', titleSize, true));
  }
  table.positions.forEach((label, c) =>
    texts.push(horizontalText(fitText(visibleToken(label), cellWidth - 4, size), plotX + (c + 0.5) * cellWidth, PAD + titleBand, 'middle', size)),
  );
  table.layers.forEach((label, r) => texts.push(centredText(label, plotX - LABEL_GAP, plotY + (r + 0.5) * cellHeight, 'end', size)));

  // Two lines centred in each cell: the token, then its probability.
  const textTop = (cellHeight - line - smallLine) / 2;
  const cells = table.cells.map((row, r) =>
    row.map((cell, c): LogitLensCellLayout => {
      const rect = { x: plotX + c * cellWidth, y: plotY + r * cellHeight, width: cellWidth - GUTTER, height: cellHeight - GUTTER };
      const fill = heatmapColor(cell.probability, 'sequential', 0, 1);
      const centre = rect.x + rect.width / 2;
      return {
        rect,
        fill,
        textColor: textColorOn(fill),
        token: horizontalText(fitText(visibleToken(cell.token), rect.width - 4, size), centre, rect.y + textTop, 'middle', size),
        probability: horizontalText(Math.min(1, Math.max(0, cell.probability)).toFixed(2), centre, rect.y + textTop + line, 'middle', smallSize),
      };
    }),
  );
  const colorbarTicks = tickValues.map((v, i) => ({ position: plotY + (1 - v) * colorbarHeight, label: tickLabels[i] }));
  for (const tick of colorbarTicks) texts.push(centredText(tick.label, colorbarX + COLORBAR_WIDTH + TICK + TICK_GAP, tick.position, 'start', size));
  texts.push(verticalText('probability', colorbarLabelX, plotY + colorbarHeight / 2, 'middle', size));

  return {
    width,
    height,
    rows,
    columns,
    cellWidth,
    cellHeight,
    plot: { x: plotX, y: plotY, width: plotWidth - GUTTER, height: plotHeight - GUTTER },
    cells,
    colorbar: { x: colorbarX, y: plotY, width: COLORBAR_WIDTH, height: colorbarHeight },
    colorbarTicks,
    texts,
  };
}

async function drawPng(lens: LogitLensLayout): Promise<Uint8Array> {
  const bitmap = makeRaster(lens.width, lens.height);
  bitmap.data.fill(255);
  const cells = lens.cells.flat();
  for (const cell of cells) fillRect(bitmap, cell.rect.x, cell.rect.y, cell.rect.width, cell.rect.height, cell.fill);
  frame(bitmap, lens.plot, FRAME_COLOR);
  drawColorbar(bitmap, lens.colorbar, 'sequential', 0, 1, lens.colorbarTicks.map((t) => t.position));
  drawTexts(bitmap, lens.texts);
  for (const color of [TEXT_COLOR, [255, 255, 255] as Rgb]) {
    const inColor = cells.filter((cell) => cssColor(cell.textColor) === cssColor(color));
    drawTexts(bitmap, inColor.flatMap((cell) => [cell.token, cell.probability]), color);
  }
  return bitmap.png();
}

function drawSvg(lens: LogitLensLayout, title: string | undefined): string {
  const cells = lens.cells.flat();
  const { colorbar } = lens;
  const rects = cells.map(({ rect, fill }) => `<rect x="${rect.x}" y="${rect.y}" width="${rect.width}" height="${rect.height}" fill="${cssColor(fill)}"/>`);
  const cellTexts = [TEXT_COLOR, [255, 255, 255] as Rgb].map((color) => {
    const inColor = cells.filter((cell) => cssColor(cell.textColor) === cssColor(color));
    return inColor.length === 0 ? '' : [`<g fill="${cssColor(color)}">`, ...svgTexts(inColor.flatMap((cell) => [cell.token, cell.probability])), '</g>'].join('\n');
  });
  const ticks = lens.colorbarTicks.map((t) => `M${colorbar.x + colorbar.width + 0.5} ${round(t.position)}h${TICK}`).join('');
  const { plot } = lens;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${lens.width}" height="${lens.height}" viewBox="0 0 ${lens.width} ${lens.height}">`,
    title ? `<title>${escapeXml(title)}</title>` : '',
    `<defs>${svgColorbarGradient('sequential')}</defs>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<g shape-rendering="crispEdges">`,
    ...rects,
    '</g>',
    `<rect x="${colorbar.x}" y="${colorbar.y}" width="${colorbar.width}" height="${colorbar.height}" fill="url(#colorbar)"/>`,
    `<g fill="none" stroke="${cssColor(FRAME_COLOR)}" stroke-width="1">`,
    `<rect x="${plot.x - 0.5}" y="${plot.y - 0.5}" width="${plot.width + 1}" height="${plot.height + 1}"/>`,
    `<rect x="${colorbar.x - 0.5}" y="${colorbar.y - 0.5}" width="${colorbar.width + 1}" height="${colorbar.height + 1}"/>`,
    `<path d="${ticks}"/></g>`,
    `<g font-family="${SVG_FONT_FAMILY}" fill="${cssColor(TEXT_COLOR)}">`,
    ...svgTexts(lens.texts),
    ...cellTexts.filter((part) => part !== ''),
    '</g></svg>',
  ]
    .filter((part) => part !== '')
    .join('\n');
}

/**
 * Draws a logit-lens table as a PNG: layers down (in the table's order), positions across
 * (labelled with the input tokens), each cell the top-1 token and its probability on a background
 * shaded by the probability, with a colour bar. Resolves to the PNG bytes, also written to
 * `options.file` when given. A malformed table (empty, ragged, a probability outside [0, 1]) is a
 * `MieShapeError`, bad options a `MieConfigError`.
 *
 * ```ts
 * await renderLogitLens({ layers: ['layer 0', 'output'], positions: ['<s>', 'K'],
 *   cells: [[{ token: 'K', probability: 0.4 }, { token: 'AE1', probability: 0.2 }], [{ token: 'K', probability: 0.9 }, { token: 'AE1', probability: 0.8 }]] },
 *   { file: 'lens.png' });
 * ```
 */
export async function renderLogitLens(table: LogitLensTable, options: LogitLensOptions = {}): Promise<Uint8Array> {
  const bytes = await drawPng(layout('renderLogitLens', table, options));
  if (options.file !== undefined) await writeOutput(options.file, bytes);
  return bytes;
}

/** {@link renderLogitLens} as an SVG document: one `<rect>` per cell, vector text. */
export async function renderLogitLensSvg(table: LogitLensTable, options: LogitLensOptions = {}): Promise<string> {
  const svg = drawSvg(layout('renderLogitLensSvg', table, options), options.title);
  if (options.file !== undefined) await writeOutput(options.file, svg);
  return svg;
}
