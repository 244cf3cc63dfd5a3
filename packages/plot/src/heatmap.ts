/**
 * A small heatmap renderer for tables of numbers (positional encodings, rotation angles, attention
 * maps): cells, labelled axes with tick labels, a title and a colour bar, as a PNG (drawn through
 * raster.ts: pureimage and DejaVu Sans in Node, an OffscreenCanvas in a browser) or as an SVG string.
 *
 * Rows of `values` run down the y axis (row 0 at the top, as matplotlib's `imshow`), columns along
 * the x axis. Both outputs share one layout, {@link layoutHeatmap}, so callers can find any cell.
 */
import { MieConfigError, checkOptions as checkOptionKeys, errorMessage } from '@mie/core';
import { base64, encodePng, font, makeRaster, textWidth, writeOutput, type Raster } from './raster';

export type { ColorMapName, HeatmapOptions } from '@mie/core';
import type { ColorMapName, HeatmapOptions } from '@mie/core';

/** An axis-aligned rectangle in pixels; `x`, `y` is the top-left corner. */
export interface HeatmapRect {
  /** Left edge in pixels. */
  x: number;
  /** Top edge in pixels. */
  y: number;
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
}

/** A tick: its pixel coordinate along the axis and its label. */
export interface HeatmapTick {
  /** Pixel x (for x ticks) or y (for y and colour bar ticks) of the tick's centre line. */
  position: number;
  /** The text drawn beside the tick. */
  label: string;
}

/** A piece of text placed by the layout: anchor point of the alphabetic baseline, and rotation. */
export interface HeatmapText {
  /** The text itself. */
  text: string;
  /** Anchor x in pixels. */
  x: number;
  /** Anchor y in pixels: the alphabetic baseline (for vertical text, the anchor along the text). */
  y: number;
  /** `'start'`, `'middle'` or `'end'` of the text sits at `x`, `y` (SVG's `text-anchor`). */
  anchor: 'start' | 'middle' | 'end';
  /** True when the text runs upwards (rotated by -90 degrees about `x`, `y`). */
  vertical: boolean;
  /** Font size in pixels. */
  size: number;
  /** Bold (the title). */
  bold: boolean;
  /** The box the text occupies, for tests and overlays. */
  box: HeatmapRect;
}

/** Where everything goes: shared by the PNG and SVG renderers. */
export interface HeatmapLayout {
  /** Image width in pixels. */
  width: number;
  /** Image height in pixels. */
  height: number;
  /** Rows of `values` (drawn top to bottom). */
  rows: number;
  /** Columns of `values` (drawn left to right). */
  columns: number;
  /** Pixels per column. */
  cellWidth: number;
  /** Pixels per row. */
  cellHeight: number;
  /** The cells: column `c`, row `r` covers `plot.x + c * cellWidth`, `plot.y + r * cellHeight`. */
  plot: HeatmapRect;
  /** The colour bar: `vmax` at the top, `vmin` at the bottom. */
  colorbar: HeatmapRect;
  /** The colour map used (`'auto'` resolved). */
  colorMap: ColorMapName;
  /** The value drawn with the lowest colour. */
  vmin: number;
  /** The value drawn with the highest colour. */
  vmax: number;
  /** Labelled columns. */
  xTicks: HeatmapTick[];
  /** Labelled rows. */
  yTicks: HeatmapTick[];
  /** Colour bar ticks (`position` is a pixel y). */
  colorbarTicks: HeatmapTick[];
  /** Every piece of text: title, axis labels, tick labels, colour bar label. */
  texts: HeatmapText[];
}

type Rgb = [number, number, number];

// DejaVu Sans metrics as fractions of the font size (hhea ascender/descender, digit height).
const ASCENT = 0.93;
const DESCENT = 0.24;
const DIGIT_HEIGHT = 0.73;
const TEXT_COLOR: Rgb = [34, 34, 34];
const FRAME_COLOR: Rgb = [68, 68, 68];
const MISSING_COLOR: Rgb = [200, 200, 200];
const PAD = 10;
const TICK = 4;
const TICK_GAP = 3;
const LABEL_GAP = 6;
const COLORBAR_GAP = 14;
const COLORBAR_WIDTH = 14;
const TARGET_PLOT_SIZE = 480;

// Piecewise-linear colour maps (control points evenly spaced over [0, 1]).
const COLOR_MAPS: Record<ColorMapName, Rgb[]> = {
  // ColorBrewer RdBu, reversed: blue (low) -> near-white -> red (high).
  diverging: ['#053061', '#2166ac', '#4393c3', '#92c5de', '#d1e5f0', '#f7f7f7', '#fddbc7', '#f4a582', '#d6604d', '#b2182b', '#67001f'].map(hex),
  // matplotlib's viridis, sampled at 10 points.
  sequential: ['#440154', '#482878', '#3e4989', '#31688e', '#26828e', '#1f9e89', '#35b779', '#6ece58', '#b5de2b', '#fde725'].map(hex),
  // Dark at both ends, blue, white in the middle, red: a closed loop for angles in [-pi, pi].
  cyclic: ['#2d1e3e', '#2166ac', '#92c5de', '#f7f7f7', '#f4a582', '#b2182b', '#2d1e3e'].map(hex),
};

function hex(color: string): Rgb {
  const n = parseInt(color.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

function cssColor([r, g, b]: Rgb): string {
  return `#${((1 << 24) | (r << 16) | (g << 8) | b).toString(16).slice(1)}`;
}

/** The colour of `value` on `colorMap` with limits `vmin`, `vmax` (grey when not finite). */
export function heatmapColor(value: number, colorMap: ColorMapName, vmin: number, vmax: number): [number, number, number] {
  if (!Number.isFinite(value)) return [...MISSING_COLOR];
  const stops = COLOR_MAPS[colorMap];
  const t = Math.min(1, Math.max(0, (value - vmin) / (vmax - vmin)));
  const scaled = t * (stops.length - 1);
  const i = Math.min(stops.length - 2, Math.floor(scaled));
  const f = scaled - i;
  const [a, b] = [stops[i], stops[i + 1]];
  return [0, 1, 2].map((c) => Math.round(a[c] + (b[c] - a[c]) * f)) as Rgb;
}

export { textWidth };

function fail(argument: string, expected: string, received: unknown): never {
  throw new MieConfigError(errorMessage('renderHeatmap', `option "${argument}"`, expected, received));
}

function checkPositiveInteger(name: string, value: number | undefined, max: number): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= 1 && value <= max)) {
    fail(name, `must be an integer in [1, ${max}]`, value);
  }
}

const OPTION_KEYS = [
  'values', 'title', 'xLabel', 'yLabel', 'xTickLabels', 'yTickLabels', 'colorMap', 'vmin', 'vmax',
  'colorbarLabel', 'colorbarTicks', 'cellWidth', 'cellHeight', 'fontSize', 'file',
] as const;

function checkOptions(options: HeatmapOptions): { rows: number; columns: number } {
  checkOptionKeys('renderHeatmap', options, OPTION_KEYS);
  const { values } = options;
  if (!Array.isArray(values) || values.length === 0 || !Array.isArray(values[0]) || values[0].length === 0) {
    fail('values', 'must be a non-empty array of non-empty rows of numbers', values);
  }
  const columns = values[0].length;
  values.forEach((row, r) => {
    if (!Array.isArray(row) || row.length !== columns) {
      fail('values', `must be rectangular: row 0 has ${columns} entries, row ${r} differs`, row);
    }
    if (!row.every((v) => typeof v === 'number')) fail('values', `must hold numbers only (row ${r})`, row);
  });
  for (const [name, labels, count] of [['xTickLabels', options.xTickLabels, columns], ['yTickLabels', options.yTickLabels, values.length]] as const) {
    if (labels !== undefined && (!Array.isArray(labels) || labels.length !== count || !labels.every((l) => typeof l === 'string'))) {
      fail(name, `must be an array of ${count} strings, one per ${name === 'xTickLabels' ? 'column' : 'row'}`, labels);
    }
  }
  if (options.colorMap !== undefined && !['auto', ...Object.keys(COLOR_MAPS)].includes(options.colorMap)) {
    fail('colorMap', "must be 'auto', 'diverging', 'sequential' or 'cyclic'", options.colorMap);
  }
  for (const name of ['vmin', 'vmax'] as const) {
    if (options[name] !== undefined && !Number.isFinite(options[name])) fail(name, 'must be a finite number', options[name]);
  }
  if (options.vmin !== undefined && options.vmax !== undefined && !(options.vmin < options.vmax)) {
    fail('vmax', `must be greater than vmin (${options.vmin})`, options.vmax);
  }
  const ticks = options.colorbarTicks;
  if (ticks !== undefined && (!Array.isArray(ticks) || !ticks.every((t) => Number.isFinite(t?.value) && typeof t?.label === 'string'))) {
    fail('colorbarTicks', 'must be an array of { value: finite number, label: string }', ticks);
  }
  checkPositiveInteger('cellWidth', options.cellWidth, 400);
  checkPositiveInteger('cellHeight', options.cellHeight, 400);
  checkPositiveInteger('fontSize', options.fontSize, 200);
  for (const name of ['title', 'xLabel', 'yLabel', 'colorbarLabel', 'file'] as const) {
    if (options[name] !== undefined && typeof options[name] !== 'string') fail(name, 'must be a string', options[name]);
  }
  return { rows: values.length, columns };
}

/** The colour map and its limits for these values and options. */
function colorScale(options: HeatmapOptions): { colorMap: ColorMapName; vmin: number; vmax: number } {
  let min = Infinity;
  let max = -Infinity;
  for (const row of options.values) {
    for (const v of row) {
      if (!Number.isFinite(v)) continue;
      if (v < min) min = v;
      if (v > max) max = v;
    }
  }
  if (min === Infinity) [min, max] = [0, 1];
  const requested = options.colorMap ?? 'auto';
  const colorMap: ColorMapName = requested === 'auto' ? (min < 0 && max > 0 ? 'diverging' : 'sequential') : requested;
  let { vmin, vmax } = options;
  if (colorMap === 'diverging') {
    // Symmetric about zero, so that zero is white: a missing limit mirrors the other one.
    const bound = Math.max(Math.abs(min), Math.abs(max));
    vmax ??= vmin !== undefined ? -vmin : bound;
    vmin ??= -vmax;
  }
  vmin ??= Math.min(min, vmax ?? min);
  vmax ??= Math.max(max, vmin);
  if (!(vmax > vmin)) [vmin, vmax] = [vmin - 0.5, vmax + 0.5];
  return { colorMap, vmin, vmax };
}

/** 1, 2, 5, 10, 20, 50, ...: the smallest such step of at least `minimum`. */
/** @internal */
export function niceStep(minimum: number): number {
  const magnitude = 10 ** Math.floor(Math.log10(Math.max(minimum, 1e-300)));
  for (const m of [1, 2, 5, 10]) if (m * magnitude >= minimum) return m * magnitude;
  return 10 * magnitude;
}

/** Formats a colour bar value with as many decimals as the step needs; minus as U+2212. */
/** @internal */
export function formatValue(value: number, step: number): string {
  const decimals = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
  const text = (Math.abs(value) < step * 1e-6 ? 0 : value).toFixed(decimals);
  return text.replace('-', '\u2212');
}

/** Which rows or columns get a tick label: all when they fit, else every k-th (a nice k for indices). */
function tickIndices(count: number, cellSize: number, spaceNeeded: number, nice: boolean): number[] {
  const minimum = Math.max(1, Math.ceil(spaceNeeded / cellSize));
  const step = nice ? niceStep(minimum) : minimum;
  const indices: number[] = [];
  for (let i = 0; i < count; i += step) indices.push(i);
  return indices;
}

/**
 * Computes the layout of a heatmap: image size, the plot and colour bar rectangles, ticks and every
 * piece of text. {@link renderHeatmap} and {@link renderHeatmapSvg} draw exactly this.
 */
export function layoutHeatmap(options: HeatmapOptions): HeatmapLayout {
  const { rows, columns } = checkOptions(options);
  const { colorMap, vmin, vmax } = colorScale(options);
  const size = options.fontSize ?? 12;
  const titleSize = Math.round(size * 1.25);
  const line = Math.ceil(size * (ASCENT + DESCENT));
  const cellWidth = options.cellWidth ?? Math.min(40, Math.max(1, Math.floor(TARGET_PLOT_SIZE / columns)));
  const cellHeight = options.cellHeight ?? Math.min(40, Math.max(1, Math.floor(TARGET_PLOT_SIZE / rows)));
  const plotWidth = columns * cellWidth;
  const plotHeight = rows * cellHeight;

  // x tick labels: horizontal when they fit in their cells, else vertical, thinned when crowded.
  const xLabels = options.xTickLabels ?? Array.from({ length: columns }, (_, i) => String(i));
  const xWidths = xLabels.map((l) => textWidth(l, size));
  const most = (values: number[]) => values.reduce((a, b) => Math.max(a, b), 0); // no spread: labels may be many
  const xWidest = most(xWidths);
  const xVertical = options.xTickLabels !== undefined && xWidest + 4 > cellWidth;
  const xIndices = options.xTickLabels
    ? tickIndices(columns, cellWidth, xVertical ? line : xWidest + 4, false)
    : tickIndices(columns, cellWidth, Math.max(xWidest + 8, size * 2.5), true);
  const xTickBand = xVertical ? Math.ceil(most(xIndices.map((i) => xWidths[i]))) : line;

  const yLabels = options.yTickLabels ?? Array.from({ length: rows }, (_, i) => String(i));
  const yIndices = options.yTickLabels ? tickIndices(rows, cellHeight, line, false) : tickIndices(rows, cellHeight, size * 2.5, true);
  const yTickBand = Math.ceil(most(yIndices.map((i) => textWidth(yLabels[i], size))));

  // Colour bar ticks: the caller's, or nice values inside [vmin, vmax].
  const step = niceStep((vmax - vmin) / 5);
  const slack = (vmax - vmin) * 1e-9;
  let colorbarValues: number[] = [];
  let colorbarLabels: string[];
  if (options.colorbarTicks) {
    const inside = options.colorbarTicks.filter((t) => t.value >= vmin - slack && t.value <= vmax + slack);
    colorbarValues = inside.map((t) => t.value);
    colorbarLabels = inside.map((t) => t.label);
  } else {
    for (let k = Math.ceil(vmin / step - 1e-9); k * step <= vmax + slack; k++) colorbarValues.push(k * step);
    colorbarLabels = colorbarValues.map((v) => formatValue(v, step));
  }
  const colorbarTickBand = Math.ceil(Math.max(0, ...colorbarLabels.map((l) => textWidth(l, size))));

  // Horizontal: pad | y label | y tick labels | ticks | plot | colour bar | its labels | its title | pad.
  const yLabelBand = options.yLabel ? line + LABEL_GAP : 0;
  const plotX = PAD + yLabelBand + yTickBand + TICK_GAP + TICK;
  const colorbarX = plotX + plotWidth + COLORBAR_GAP;
  const colorbarLabelX = colorbarX + COLORBAR_WIDTH + TICK + TICK_GAP + colorbarTickBand + LABEL_GAP;
  let width = (options.colorbarLabel ? colorbarLabelX + line : colorbarLabelX - LABEL_GAP) + PAD;
  const titleWidth = options.title ? textWidth(options.title, titleSize, true) : 0;
  width = Math.ceil(Math.max(width, titleWidth + 2 * PAD, (options.xLabel ? textWidth(options.xLabel, size) : 0) + 2 * PAD));

  // Vertical: pad | title | plot | ticks | x tick labels | x label | pad.
  const titleBand = options.title ? Math.ceil(titleSize * (ASCENT + DESCENT)) + LABEL_GAP : 0;
  const plotY = PAD + titleBand;
  const xTickLabelY = plotY + plotHeight + TICK + TICK_GAP;
  const xLabelY = xTickLabelY + xTickBand + LABEL_GAP;
  const height = Math.ceil((options.xLabel ? xLabelY + line : xLabelY - LABEL_GAP) + PAD);

  const texts: HeatmapText[] = [];
  const horizontal = (text: string, x: number, top: number, anchor: HeatmapText['anchor'], textSize = size, bold = false): void => {
    const w = textWidth(text, textSize, bold);
    const left = anchor === 'start' ? x : anchor === 'middle' ? x - w / 2 : x - w;
    texts.push({ text, x, y: top + textSize * ASCENT, anchor, vertical: false, size: textSize, bold, box: { x: left, y: top, width: w, height: textSize * (ASCENT + DESCENT) } });
  };
  // Vertical text reads upwards; `left` is the left edge of its glyphs, `y` the anchor along the text.
  const vertical = (text: string, left: number, y: number, anchor: HeatmapText['anchor']): void => {
    const w = textWidth(text, size);
    const top = anchor === 'start' ? y - w : anchor === 'middle' ? y - w / 2 : y;
    texts.push({ text, x: left + size * ASCENT, y, anchor, vertical: true, size, bold: false, box: { x: left, y: top, width: size * (ASCENT + DESCENT), height: w } });
  };

  if (options.title) {
    // Centred over the plot, but kept inside the image.
    const centre = Math.min(Math.max(plotX + plotWidth / 2, PAD + titleWidth / 2), width - PAD - titleWidth / 2);
    horizontal(options.title, centre, PAD, 'middle', titleSize, true);
  }
  const xTicks = xIndices.map((i) => ({ position: plotX + (i + 0.5) * cellWidth, label: xLabels[i] }));
  for (const tick of xTicks) {
    if (xVertical) vertical(tick.label, tick.position - (size * DIGIT_HEIGHT) / 2 - size * (ASCENT - DIGIT_HEIGHT), xTickLabelY, 'end');
    else horizontal(tick.label, tick.position, xTickLabelY, 'middle');
  }
  const yTicks = yIndices.map((i) => ({ position: plotY + (i + 0.5) * cellHeight, label: yLabels[i] }));
  for (const tick of yTicks) horizontal(tick.label, plotX - TICK - TICK_GAP, tick.position - (size * DIGIT_HEIGHT) / 2 - size * (ASCENT - DIGIT_HEIGHT), 'end');
  const colorbarTicks = colorbarValues.map((v, i) => ({
    position: plotY + ((vmax - v) / (vmax - vmin)) * plotHeight,
    label: colorbarLabels[i],
  }));
  for (const tick of colorbarTicks) {
    horizontal(tick.label, colorbarX + COLORBAR_WIDTH + TICK + TICK_GAP, tick.position - (size * DIGIT_HEIGHT) / 2 - size * (ASCENT - DIGIT_HEIGHT), 'start');
  }
  if (options.xLabel) horizontal(options.xLabel, plotX + plotWidth / 2, xLabelY, 'middle');
  if (options.yLabel) vertical(options.yLabel, PAD, plotY + plotHeight / 2, 'middle');
  if (options.colorbarLabel) vertical(options.colorbarLabel, colorbarLabelX, plotY + plotHeight / 2, 'middle');

  return {
    width,
    height,
    rows,
    columns,
    cellWidth,
    cellHeight,
    plot: { x: plotX, y: plotY, width: plotWidth, height: plotHeight },
    colorbar: { x: colorbarX, y: plotY, width: COLORBAR_WIDTH, height: plotHeight },
    colorMap,
    vmin,
    vmax,
    xTicks,
    yTicks,
    colorbarTicks,
    texts,
  };
}

/** Pixel writes straight into the RGBA buffer: exact colours, and far faster than paths. */
function fillRect(bitmap: Raster, x: number, y: number, w: number, h: number, [r, g, b]: Rgb): void {
  const x0 = Math.max(0, Math.round(x));
  const y0 = Math.max(0, Math.round(y));
  const x1 = Math.min(bitmap.width, Math.round(x + w));
  const y1 = Math.min(bitmap.height, Math.round(y + h));
  const data = bitmap.data;
  for (let yy = y0; yy < y1; yy++) {
    for (let i = (yy * bitmap.width + x0) * 4, end = (yy * bitmap.width + x1) * 4; i < end; i += 4) {
      data[i] = r;
      data[i + 1] = g;
      data[i + 2] = b;
      data[i + 3] = 255;
    }
  }
}

/** A one-pixel frame just outside `rect`. */
function frame(bitmap: Raster, rect: HeatmapRect, color: Rgb): void {
  fillRect(bitmap, rect.x - 1, rect.y - 1, rect.width + 2, 1, color);
  fillRect(bitmap, rect.x - 1, rect.y + rect.height, rect.width + 2, 1, color);
  fillRect(bitmap, rect.x - 1, rect.y, 1, rect.height, color);
  fillRect(bitmap, rect.x + rect.width, rect.y, 1, rect.height, color);
}

function drawPng(options: HeatmapOptions, layout: HeatmapLayout): Promise<Uint8Array> {
  const { plot, colorbar, cellWidth, cellHeight, colorMap, vmin, vmax } = layout;
  const bitmap = makeRaster(layout.width, layout.height);
  bitmap.data.fill(255);
  options.values.forEach((row, r) => {
    row.forEach((value, c) => {
      fillRect(bitmap, plot.x + c * cellWidth, plot.y + r * cellHeight, cellWidth, cellHeight, heatmapColor(value, colorMap, vmin, vmax));
    });
  });
  for (let y = 0; y < colorbar.height; y++) {
    const value = vmax - ((y + 0.5) / colorbar.height) * (vmax - vmin);
    fillRect(bitmap, colorbar.x, colorbar.y + y, colorbar.width, 1, heatmapColor(value, colorMap, vmin, vmax));
  }
  frame(bitmap, plot, FRAME_COLOR);
  frame(bitmap, colorbar, FRAME_COLOR);
  const bottom = plot.y + plot.height + 1;
  for (const tick of layout.xTicks) fillRect(bitmap, Math.floor(tick.position), bottom, 1, TICK - 1, FRAME_COLOR);
  for (const tick of layout.yTicks) fillRect(bitmap, plot.x - TICK, Math.floor(tick.position), TICK - 1, 1, FRAME_COLOR);
  for (const tick of layout.colorbarTicks) {
    fillRect(bitmap, colorbar.x + colorbar.width + 1, Math.min(Math.floor(tick.position), colorbar.y + colorbar.height - 1), TICK - 1, 1, FRAME_COLOR);
  }

  const ctx = bitmap.context();
  ctx.fillStyle = cssColor(TEXT_COLOR);
  ctx.textBaseline = 'alphabetic';
  for (const t of layout.texts) {
    ctx.font = font(t.size, t.bold);
    ctx.textAlign = t.anchor === 'start' ? 'left' : t.anchor === 'middle' ? 'center' : 'right';
    if (t.vertical) {
      ctx.save();
      ctx.translate(t.x, t.y);
      ctx.rotate(-Math.PI / 2);
      ctx.fillText(t.text, 0, 0);
      ctx.restore();
    } else {
      ctx.fillText(t.text, t.x, t.y);
    }
  }
  return bitmap.png();
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

const round = (v: number): number => Math.round(v * 100) / 100;

async function drawSvg(options: HeatmapOptions, layout: HeatmapLayout): Promise<string> {
  const { plot, colorbar, colorMap, vmin, vmax, columns, rows } = layout;
  // The cells travel as an embedded PNG of one pixel per cell, scaled without smoothing (matplotlib's
  // SVG backend embeds `imshow` images the same way): a 100 x 128 table is a few kB instead of
  // 12 800 <rect> elements. Text, ticks and the colour bar stay vector.
  const cells = new Uint8Array(columns * rows * 4);
  options.values.forEach((row, r) =>
    row.forEach((value, c) => {
      cells.set([...heatmapColor(value, colorMap, vmin, vmax), 255], (r * columns + c) * 4);
    }),
  );
  const cellsUri = `data:image/png;base64,${base64(await encodePng(cells, columns, rows))}`;
  const stops = COLOR_MAPS[colorMap]
    .map((color, i, all) => `<stop offset="${round((i / (all.length - 1)) * 100)}%" stop-color="${cssColor(color)}"/>`)
    .join('');
  const stroke = cssColor(FRAME_COLOR);
  const ticks = [
    ...layout.xTicks.map((t) => `M${round(t.position)} ${plot.y + plot.height + 0.5}v${TICK}`),
    ...layout.yTicks.map((t) => `M${plot.x - 0.5} ${round(t.position)}h${-TICK}`),
    ...layout.colorbarTicks.map((t) => `M${colorbar.x + colorbar.width + 0.5} ${round(t.position)}h${TICK}`),
  ].join('');
  const texts = layout.texts.map((t) => {
    const attributes = `x="${round(t.x)}" y="${round(t.y)}" font-size="${t.size}" text-anchor="${t.anchor}"${t.bold ? ' font-weight="bold"' : ''}`;
    const rotate = t.vertical ? ` transform="rotate(-90 ${round(t.x)} ${round(t.y)})"` : '';
    return `<text ${attributes}${rotate}>${escapeXml(t.text)}</text>`;
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}">`,
    options.title ? `<title>${escapeXml(options.title)}</title>` : '',
    `<defs><linearGradient id="colorbar" x1="0" y1="1" x2="0" y2="0">${stops}</linearGradient></defs>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<image x="${plot.x}" y="${plot.y}" width="${plot.width}" height="${plot.height}" preserveAspectRatio="none" image-rendering="optimizeSpeed" style="image-rendering:pixelated" xlink:href="${cellsUri}"/>`,
    `<rect x="${colorbar.x}" y="${colorbar.y}" width="${colorbar.width}" height="${colorbar.height}" fill="url(#colorbar)"/>`,
    `<g fill="none" stroke="${stroke}" stroke-width="1">`,
    `<rect x="${plot.x - 0.5}" y="${plot.y - 0.5}" width="${plot.width + 1}" height="${plot.height + 1}"/>`,
    `<rect x="${colorbar.x - 0.5}" y="${colorbar.y - 0.5}" width="${colorbar.width + 1}" height="${colorbar.height + 1}"/>`,
    `<path d="${ticks}"/></g>`,
    `<g font-family="DejaVu Sans, Verdana, sans-serif" fill="${cssColor(TEXT_COLOR)}">`,
    ...texts,
    '</g></svg>',
  ]
    .filter((part) => part !== '')
    .join('\n');
}

/**
 * Renders `options.values` as a heatmap PNG with a title, labelled axes, tick labels and a colour
 * bar. Resolves to the PNG bytes, and writes them to `options.file` when given. A 100 x 128 table
 * takes well under a second.
 */
export async function renderHeatmap(options: HeatmapOptions): Promise<Uint8Array> {
  const bytes = await drawPng(options, layoutHeatmap(options));
  if (options.file !== undefined) await writeOutput(options.file, bytes);
  return bytes;
}

/**
 * The same heatmap as {@link renderHeatmap}, as an SVG document (vector text and axes; the cells
 * as an embedded image). Resolves to the SVG text, and writes it to `options.file` when given.
 */
export async function renderHeatmapSvg(options: HeatmapOptions): Promise<string> {
  const svg = await drawSvg(options, layoutHeatmap(options));
  if (options.file !== undefined) await writeOutput(options.file, svg);
  return svg;
}
