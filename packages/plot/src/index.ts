/**
 * @mie/plot: heatmaps (positional encodings, rotation angles, attention maps), line charts
 * (training curves) and interpretability pictures (every layer x head attention pattern, the
 * logit lens), as PNG and SVG, in Node and in the browser. Importing it registers it as the
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
export {
  renderAttentionGrid,
  renderAttentionGridSvg,
  layoutAttentionGrid,
  type AttentionPatterns,
  type AttentionGridOptions,
  type AttentionGridLayout,
} from './attention-grid';
export {
  renderLogitLens,
  renderLogitLensSvg,
  layoutLogitLens,
  type LogitLensTable,
  type LogitLensCell,
  type LogitLensOptions,
  type LogitLensLayout,
  type LogitLensCellLayout,
} from './logit-lens';
export { renderImageAttention, type ImageAttentionOptions } from './image-attention';

registerPlotter({ renderHeatmap, renderHeatmapSvg });
