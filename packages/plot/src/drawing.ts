/**
 * What every picture of this package is drawn with: the colour maps, text boxes measured in DejaVu
 * Sans, exact pixel rectangles, the colour bar, and the same pieces as SVG markup. heatmap.ts,
 * attention-grid.ts and logit-lens.ts lay their pictures out with these and draw them through
 * raster.ts, so a cell, a label or a colour bar looks the same in all of them.
 */
import type { ColorMapName } from '@mie/core';
import { font, textWidth, type Raster } from './raster';

/** An RGB colour, 0-255 per channel. */
export type Rgb = [number, number, number];

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

/** A piece of text placed by a layout: anchor point of the alphabetic baseline, and rotation. */
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

// DejaVu Sans metrics as fractions of the font size (hhea ascender/descender, digit height).
export const ASCENT = 0.93;
export const DESCENT = 0.24;
export const DIGIT_HEIGHT = 0.73;
export const TEXT_COLOR: Rgb = [34, 34, 34];
export const FRAME_COLOR: Rgb = [68, 68, 68];
export const MISSING_COLOR: Rgb = [200, 200, 200];
export const PAD = 10;
export const TICK = 4;
export const TICK_GAP = 3;
export const LABEL_GAP = 6;
export const COLORBAR_GAP = 14;
export const COLORBAR_WIDTH = 14;

// Piecewise-linear colour maps (control points evenly spaced over [0, 1]).
export const COLOR_MAPS: Record<ColorMapName, Rgb[]> = {
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

/** `#rrggbb` of a colour. */
export function cssColor([r, g, b]: Rgb): string {
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

/** Dark text on light backgrounds, white on dark ones (relative luminance against the midpoint). */
export function textColorOn([r, g, b]: Rgb): Rgb {
  return 0.2126 * r + 0.7152 * g + 0.0722 * b > 140 ? TEXT_COLOR : [255, 255, 255];
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

/** About five round values inside `[vmin, vmax]` for a colour bar, with their labels. */
export function colorbarTickValues(vmin: number, vmax: number): { values: number[]; labels: string[] } {
  const step = niceStep((vmax - vmin) / 5);
  const slack = (vmax - vmin) * 1e-9;
  const values: number[] = [];
  for (let k = Math.ceil(vmin / step - 1e-9); k * step <= vmax + slack; k++) values.push(k * step);
  return { values, labels: values.map((v) => formatValue(v, step)) };
}

/** Horizontal text whose box starts at `top`; `x` is its start, middle or end. */
export function horizontalText(text: string, x: number, top: number, anchor: HeatmapText['anchor'], size: number, bold = false): HeatmapText {
  const w = textWidth(text, size, bold);
  const left = anchor === 'start' ? x : anchor === 'middle' ? x - w / 2 : x - w;
  return { text, x, y: top + size * ASCENT, anchor, vertical: false, size, bold, box: { x: left, y: top, width: w, height: size * (ASCENT + DESCENT) } };
}

/** Horizontal text centred vertically on `centre` (tick labels beside a row, text in a cell). */
export function centredText(text: string, x: number, centre: number, anchor: HeatmapText['anchor'], size: number, bold = false): HeatmapText {
  return horizontalText(text, x, centre - (size * DIGIT_HEIGHT) / 2 - size * (ASCENT - DIGIT_HEIGHT), anchor, size, bold);
}

/** Text reading upwards; `left` is the left edge of its glyphs, `y` the anchor along the text. */
export function verticalText(text: string, left: number, y: number, anchor: HeatmapText['anchor'], size: number): HeatmapText {
  const w = textWidth(text, size);
  const top = anchor === 'start' ? y - w : anchor === 'middle' ? y - w / 2 : y;
  return { text, x: left + size * ASCENT, y, anchor, vertical: true, size, bold: false, box: { x: left, y: top, width: size * (ASCENT + DESCENT), height: w } };
}

/** The left edge that centres a vertical text on the column line `centre`. */
export function verticalLeftFor(centre: number, size: number): number {
  return centre - (size * DIGIT_HEIGHT) / 2 - size * (ASCENT - DIGIT_HEIGHT);
}

/** `text` cut to at most `width` pixels at `size`, with an ellipsis when cut. */
export function fitText(text: string, width: number, size: number, bold = false): string {
  if (textWidth(text, size, bold) <= width) return text;
  const characters = [...text];
  for (let n = characters.length - 1; n > 0; n--) {
    const cut = `${characters.slice(0, n).join('')}\u2026`;
    if (textWidth(cut, size, bold) <= width) return cut;
  }
  return '\u2026';
}

/** Pixel writes straight into the RGBA buffer: exact colours, and far faster than paths. */
export function fillRect(bitmap: Raster, x: number, y: number, w: number, h: number, [r, g, b]: Rgb): void {
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
export function frame(bitmap: Raster, rect: HeatmapRect, color: Rgb): void {
  fillRect(bitmap, rect.x - 1, rect.y - 1, rect.width + 2, 1, color);
  fillRect(bitmap, rect.x - 1, rect.y + rect.height, rect.width + 2, 1, color);
  fillRect(bitmap, rect.x - 1, rect.y, 1, rect.height, color);
  fillRect(bitmap, rect.x + rect.width, rect.y, 1, rect.height, color);
}

/** The colour bar's pixels (`vmax` at the top), its frame, and a tick at each of `ticks` (pixel y). */
export function drawColorbar(bitmap: Raster, colorbar: HeatmapRect, colorMap: ColorMapName, vmin: number, vmax: number, ticks: readonly number[]): void {
  for (let y = 0; y < colorbar.height; y++) {
    const value = vmax - ((y + 0.5) / colorbar.height) * (vmax - vmin);
    fillRect(bitmap, colorbar.x, colorbar.y + y, colorbar.width, 1, heatmapColor(value, colorMap, vmin, vmax));
  }
  frame(bitmap, colorbar, FRAME_COLOR);
  for (const y of ticks) {
    fillRect(bitmap, colorbar.x + colorbar.width + 1, Math.min(Math.floor(y), colorbar.y + colorbar.height - 1), TICK - 1, 1, FRAME_COLOR);
  }
}

/** Draws `texts` in `color` through the raster's 2D context (after the pixel writes). */
export function drawTexts(bitmap: Raster, texts: readonly HeatmapText[], color: Rgb = TEXT_COLOR): void {
  const ctx = bitmap.context();
  ctx.fillStyle = cssColor(color);
  ctx.textBaseline = 'alphabetic';
  for (const t of texts) {
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
}

/** Text safe inside SVG elements and attribute values. */
export function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** Two decimals: SVG coordinates without float noise. */
export const round = (v: number): number => Math.round(v * 100) / 100;

/** `<text>` elements for `texts` (the font family and colour come from the enclosing `<g>`). */
export function svgTexts(texts: readonly HeatmapText[]): string[] {
  return texts.map((t) => {
    const attributes = `x="${round(t.x)}" y="${round(t.y)}" font-size="${t.size}" text-anchor="${t.anchor}"${t.bold ? ' font-weight="bold"' : ''}`;
    const rotate = t.vertical ? ` transform="rotate(-90 ${round(t.x)} ${round(t.y)})"` : '';
    return `<text ${attributes}${rotate}>${escapeXml(t.text)}</text>`;
  });
}

/** The font of every SVG picture: DejaVu Sans as in the PNGs, else what the viewer has. */
export const SVG_FONT_FAMILY = 'DejaVu Sans, Verdana, sans-serif';

/** A vertical `<linearGradient id="colorbar">` of `colorMap`, low at the bottom. */
export function svgColorbarGradient(colorMap: ColorMapName): string {
  const stops = COLOR_MAPS[colorMap]
    .map((color, i, all) => `<stop offset="${round((i / (all.length - 1)) * 100)}%" stop-color="${cssColor(color)}"/>`)
    .join('');
  return `<linearGradient id="colorbar" x1="0" y1="1" x2="0" y2="0">${stops}</linearGradient>`;
}
