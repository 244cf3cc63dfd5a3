/**
 * Line charts as PNG (training curves): labelled axes with nice ticks, one colour per series, a
 * legend. Drawn with pureimage and the DejaVu Sans font like the heatmaps, encoded with pngjs.
 */
import { MieConfigError, errorMessage } from '@mie/core';
import { formatValue, niceStep } from './drawing';
import { font, makeRaster, textWidth, writeOutput } from './raster';

/** One line: points `[x, y]` in order of x. */
export interface LineSeries {
  name: string;
  points: Array<[number, number]>;
}

/** Options of {@link renderLineChart}. */
export interface LineChartOptions {
  series: LineSeries[];
  title?: string;
  xLabel?: string;
  yLabel?: string;
  /** Image size in pixels. Default 720 x 420. */
  width?: number;
  height?: number;
  /** Write the PNG here too. */
  file?: string;
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];

function ticks(min: number, max: number): { values: number[]; step: number } {
  if (min === max) {
    min -= 1;
    max += 1;
  }
  const step = niceStep((max - min) / 6);
  const values: number[] = [];
  // Cover the data: from the tick at or below min to the tick at or above max.
  for (let k = Math.floor(min / step + 1e-9); k <= Math.ceil(max / step - 1e-9); k++) values.push(k * step);
  return { values, step };
}

/** Renders the series as a PNG and resolves to its bytes (also written to `file` when given). */
export async function renderLineChart(options: LineChartOptions): Promise<Uint8Array> {
  const { series, title, xLabel, yLabel, width = 720, height = 420, file } = options;
  const points = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  if (points.length === 0) throw new MieConfigError(errorMessage('renderLineChart', 'option "series"', 'must hold at least one finite point', series.length));
  const size = 12;
  const xs = points.map(([x]) => x);
  const ys = points.map(([, y]) => y);
  // Reductions, not spreads: a series of a million points would overflow the stack.
  const least = (values: number[]) => values.reduce((a, b) => Math.min(a, b), Infinity);
  const most = (values: number[]) => values.reduce((a, b) => Math.max(a, b), -Infinity);
  const xTicks = ticks(least(xs), most(xs));
  const yTicks = ticks(least(ys), most(ys));
  const [x0, x1] = [xTicks.values[0], xTicks.values[xTicks.values.length - 1]];
  const [y0, y1] = [yTicks.values[0], yTicks.values[yTicks.values.length - 1]];
  const yLabels = yTicks.values.map((v) => formatValue(v, yTicks.step));
  const left = 14 + (yLabel ? size + 8 : 0) + most(yLabels.map((l) => textWidth(l, size))) + 8;
  const top = 14 + (title ? size * 1.25 + 10 : 0);
  const right = width - 16;
  const bottom = height - 14 - (xLabel ? size + 8 : 0) - size - 8;
  const px = (x: number) => left + ((x - x0) / (x1 - x0 || 1)) * (right - left);
  const py = (y: number) => bottom - ((y - y0) / (y1 - y0 || 1)) * (bottom - top);

  const image = makeRaster(width, height);
  const ctx = image.context();
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(0, 0, width, height);
  ctx.strokeStyle = '#dddddd';
  ctx.lineWidth = 1;
  ctx.fillStyle = '#222222';
  ctx.font = font(size);
  for (const [i, v] of yTicks.values.entries()) {
    const y = Math.round(py(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(left, y);
    ctx.lineTo(right, y);
    ctx.stroke();
    ctx.fillText(yLabels[i], left - 8 - textWidth(yLabels[i], size), y + size * 0.35);
  }
  for (const v of xTicks.values) {
    const x = Math.round(px(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(x, top);
    ctx.lineTo(x, bottom);
    ctx.stroke();
    const label = formatValue(v, xTicks.step);
    ctx.fillText(label, x - textWidth(label, size) / 2, bottom + 8 + size * 0.9);
  }
  ctx.strokeStyle = '#222222';
  ctx.strokeRect(left, top, right - left, bottom - top);
  series.forEach((s, index) => {
    ctx.strokeStyle = COLORS[index % COLORS.length];
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y)).forEach(([x, y], i) => (i === 0 ? ctx.moveTo(px(x), py(y)) : ctx.lineTo(px(x), py(y))));
    ctx.stroke();
    // Legend, top right inside the plot.
    const legendY = top + 10 + index * (size + 6);
    const legendX = right - 12 - textWidth(s.name, size) - 26;
    ctx.fillStyle = COLORS[index % COLORS.length];
    ctx.fillRect(legendX, legendY - 2, 18, 4);
    ctx.fillStyle = '#222222';
    ctx.fillText(s.name, legendX + 24, legendY + size * 0.35);
  });
  if (title) {
    ctx.font = font(size * 1.25, true);
    ctx.fillText(title, (left + right) / 2 - textWidth(title, size * 1.25, true) / 2, 14 + size * 1.25 * 0.9);
    ctx.font = font(size);
  }
  if (xLabel) ctx.fillText(xLabel, (left + right) / 2 - textWidth(xLabel, size) / 2, height - 14);
  if (yLabel) {
    // Vertical text: draw rotated by drawing on the side, character by character from bottom.
    ctx.save();
    ctx.translate(14 + size, (top + bottom) / 2 + textWidth(yLabel, size) / 2);
    ctx.rotate(-Math.PI / 2);
    ctx.fillText(yLabel, 0, 0);
    ctx.restore();
  }
  const bytes = await image.png();
  if (file) await writeOutput(file, bytes);
  return bytes;
}
