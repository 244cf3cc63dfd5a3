/**
 * A small heatmap renderer for tables of numbers (positional encodings, rotation angles, attention
 * maps): cells, labelled axes with tick labels, a title and a colour bar, as a PNG (drawn through
 * raster.ts: pureimage and DejaVu Sans in Node, an OffscreenCanvas in a browser) or as an SVG string.
 *
 * Rows of `values` run down the y axis (row 0 at the top, as matplotlib's `imshow`), columns along
 * the x axis. Both outputs share one layout, {@link layoutHeatmap}, so callers can find any cell.
 */
import { MieConfigError, checkOptions as checkOptionKeys, errorMessage } from '@mie/core';
import {
  COLORBAR_GAP, COLORBAR_WIDTH, COLOR_MAPS, FRAME_COLOR, LABEL_GAP, PAD, TEXT_COLOR, TICK, TICK_GAP, ASCENT, DESCENT, SVG_FONT_FAMILY,
  centredText, colorbarTickValues, cssColor, drawColorbar, drawTexts, escapeXml, fillRect, frame, heatmapColor, horizontalText, niceStep,
  round, svgColorbarGradient, svgTexts, verticalLeftFor, verticalText, type HeatmapRect, type HeatmapText,
} from './drawing';
import { base64, encodePng, makeRaster, textWidth, writeOutput } from './raster';

export type { ColorMapName, HeatmapOptions } from '@mie/core';
import type { ColorMapName, HeatmapOptions } from '@mie/core';

export type { HeatmapRect, HeatmapText } from './drawing';
export { heatmapColor, niceStep, formatValue } from './drawing';

/** A tick: its pixel coordinate along the axis and its label. */
export interface HeatmapTick {
  /** Pixel x (for x ticks) or y (for y and colour bar ticks) of the tick's centre line. */
  position: number;
  /** The text drawn beside the tick. */
  label: string;
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

const TARGET_PLOT_SIZE = 480;

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
  const slack = (vmax - vmin) * 1e-9;
  let colorbarValues: number[];
  let colorbarLabels: string[];
  if (options.colorbarTicks) {
    const inside = options.colorbarTicks.filter((t) => t.value >= vmin - slack && t.value <= vmax + slack);
    colorbarValues = inside.map((t) => t.value);
    colorbarLabels = inside.map((t) => t.label);
  } else {
    ({ values: colorbarValues, labels: colorbarLabels } = colorbarTickValues(vmin, vmax));
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
  if (options.title) {
    // Centred over the plot, but kept inside the image.
    const centre = Math.min(Math.max(plotX + plotWidth / 2, PAD + titleWidth / 2), width - PAD - titleWidth / 2);
    texts.push(horizontalText(options.title, centre, PAD, 'middle', titleSize, true));
  }
  const xTicks = xIndices.map((i) => ({ position: plotX + (i + 0.5) * cellWidth, label: xLabels[i] }));
  for (const tick of xTicks) {
    texts.push(xVertical ? verticalText(tick.label, verticalLeftFor(tick.position, size), xTickLabelY, 'end', size) : horizontalText(tick.label, tick.position, xTickLabelY, 'middle', size));
  }
  const yTicks = yIndices.map((i) => ({ position: plotY + (i + 0.5) * cellHeight, label: yLabels[i] }));
  for (const tick of yTicks) texts.push(centredText(tick.label, plotX - TICK - TICK_GAP, tick.position, 'end', size));
  const colorbarTicks = colorbarValues.map((v, i) => ({
    position: plotY + ((vmax - v) / (vmax - vmin)) * plotHeight,
    label: colorbarLabels[i],
  }));
  for (const tick of colorbarTicks) texts.push(centredText(tick.label, colorbarX + COLORBAR_WIDTH + TICK + TICK_GAP, tick.position, 'start', size));
  if (options.xLabel) texts.push(horizontalText(options.xLabel, plotX + plotWidth / 2, xLabelY, 'middle', size));
  if (options.yLabel) texts.push(verticalText(options.yLabel, PAD, plotY + plotHeight / 2, 'middle', size));
  if (options.colorbarLabel) texts.push(verticalText(options.colorbarLabel, colorbarLabelX, plotY + plotHeight / 2, 'middle', size));

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

function drawPng(options: HeatmapOptions, layout: HeatmapLayout): Promise<Uint8Array> {
  const { plot, colorbar, cellWidth, cellHeight, colorMap, vmin, vmax } = layout;
  const bitmap = makeRaster(layout.width, layout.height);
  bitmap.data.fill(255);
  options.values.forEach((row, r) => {
    row.forEach((value, c) => {
      fillRect(bitmap, plot.x + c * cellWidth, plot.y + r * cellHeight, cellWidth, cellHeight, heatmapColor(value, colorMap, vmin, vmax));
    });
  });
  drawColorbar(bitmap, colorbar, colorMap, vmin, vmax, layout.colorbarTicks.map((t) => t.position));
  frame(bitmap, plot, FRAME_COLOR);
  const bottom = plot.y + plot.height + 1;
  for (const tick of layout.xTicks) fillRect(bitmap, Math.floor(tick.position), bottom, 1, TICK - 1, FRAME_COLOR);
  for (const tick of layout.yTicks) fillRect(bitmap, plot.x - TICK, Math.floor(tick.position), TICK - 1, 1, FRAME_COLOR);
  drawTexts(bitmap, layout.texts);
  return bitmap.png();
}

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
  const stroke = cssColor(FRAME_COLOR);
  const ticks = [
    ...layout.xTicks.map((t) => `M${round(t.position)} ${plot.y + plot.height + 0.5}v${TICK}`),
    ...layout.yTicks.map((t) => `M${plot.x - 0.5} ${round(t.position)}h${-TICK}`),
    ...layout.colorbarTicks.map((t) => `M${colorbar.x + colorbar.width + 0.5} ${round(t.position)}h${TICK}`),
  ].join('');
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="${layout.width}" height="${layout.height}" viewBox="0 0 ${layout.width} ${layout.height}">`,
    options.title ? `<title>${escapeXml(options.title)}</title>` : '',
    `<defs>${svgColorbarGradient(colorMap)}</defs>`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<image x="${plot.x}" y="${plot.y}" width="${plot.width}" height="${plot.height}" preserveAspectRatio="none" image-rendering="optimizeSpeed" style="image-rendering:pixelated" xlink:href="${cellsUri}"/>`,
    `<rect x="${colorbar.x}" y="${colorbar.y}" width="${colorbar.width}" height="${colorbar.height}" fill="url(#colorbar)"/>`,
    `<g fill="none" stroke="${stroke}" stroke-width="1">`,
    `<rect x="${plot.x - 0.5}" y="${plot.y - 0.5}" width="${plot.width + 1}" height="${plot.height + 1}"/>`,
    `<rect x="${colorbar.x - 0.5}" y="${colorbar.y - 0.5}" width="${colorbar.width + 1}" height="${colorbar.height + 1}"/>`,
    `<path d="${ticks}"/></g>`,
    `<g font-family="${SVG_FONT_FAMILY}" fill="${cssColor(TEXT_COLOR)}">`,
    ...svgTexts(layout.texts),
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
