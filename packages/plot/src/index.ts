/**
 * @mie/plot: heatmaps (positional encodings, rotation angles, attention maps) and line charts
 * (training curves), as PNG and SVG, in Node and in the browser. Importing it registers it as the
 * plotter that `PositionalEncoding.visualizeEncodings()` and `RotaryPositionEncoding.visualizeRotation()`
 * use.
 */
import { registerPlotter } from '@mie/core';
import { renderHeatmap, renderHeatmapSvg } from './heatmap';

export {
  renderHeatmap,
  renderHeatmapSvg,
  layoutHeatmap,
  heatmapColor,
  type ColorMapName,
  type HeatmapOptions,
  type HeatmapLayout,
  type HeatmapRect,
  type HeatmapTick,
  type HeatmapText,
} from './heatmap';
export { renderLineChart, type LineChartOptions, type LineSeries } from './line-chart';
export { renderAttentionHeatmap, renderAttentionHeatmapSvg, attentionHeatmapOptions, type AttentionHeatmapOptions } from './attention-heatmap';

registerPlotter({ renderHeatmap, renderHeatmapSvg });
