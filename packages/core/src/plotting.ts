/**
 * The contract between what describes a picture and what draws it: a heatmap is described by
 * {@link HeatmapOptions} (values and labels: plain data), and drawn by `@mie/plot`, an optional
 * package (it brings pngjs, pureimage and fonts, which a model does not need). Modules that can
 * picture themselves (`PositionalEncoding.visualizeEncodings`, ...) ask for the registered
 * plotter, which `@mie/plot` registers when it is imported (in Node, the modules import it
 * themselves when it is installed).
 */
import { MieConfigError } from './errors';

/**
 * Colour maps. `'diverging'`: blue for negative, white at the centre of the range, red for positive
 * (ColorBrewer RdBu, as matplotlib's `RdBu_r`). `'sequential'`: viridis, dark purple (low) to yellow
 * (high). `'cyclic'`: for angles; equal colours at both ends of the range (dark), blue at the first
 * quarter, white at the middle, red at the third quarter. `'auto'` picks `'diverging'` when the values
 * take both signs and `'sequential'` otherwise.
 */
export type ColorMapName = 'diverging' | 'sequential' | 'cyclic';

/** What `@mie/plot`'s `renderHeatmap`, `renderHeatmapSvg` and `layoutHeatmap` draw. */
export interface HeatmapOptions {
  /** The table: `values[row][column]`, rectangular, at least 1 x 1. Non-finite entries are drawn grey. */
  values: number[][];
  /** Title above the plot. Default: none. */
  title?: string;
  /** Label of the x axis (columns). Default: none. */
  xLabel?: string;
  /** Label of the y axis (rows). Default: none. */
  yLabel?: string;
  /**
   * One label per column (tokens of an attention map, say). Default: the column indices, with a
   * readable subset shown. Labels too wide for their cell are drawn vertically; when even those would
   * overlap, every k-th label is shown.
   */
  xTickLabels?: string[];
  /** One label per row. Default: the row indices, with a readable subset shown. */
  yTickLabels?: string[];
  /** Colour map; default `'auto'` (diverging when the values take both signs, else sequential). */
  colorMap?: ColorMapName | 'auto';
  /**
   * Value drawn with the lowest colour. Default: the minimum; for a diverging map `-vmax`, or
   * `-max|v|` (so that zero is white). Values outside `[vmin, vmax]` take the end colours.
   */
  vmin?: number;
  /** Value drawn with the highest colour. Default: the maximum; for a diverging map `-vmin`, or `max|v|`. */
  vmax?: number;
  /** Label beside the colour bar. Default: none. */
  colorbarLabel?: string;
  /**
   * Colour bar ticks as `{ value, label }` (for example multiples of pi for angles); ticks outside
   * `[vmin, vmax]` are dropped. Default: about five evenly spaced round numbers.
   */
  colorbarTicks?: Array<{ value: number; label: string }>;
  /** Pixels per column. Default: `floor(480 / columns)`, clamped to [1, 40]. */
  cellWidth?: number;
  /** Pixels per row. Default: `floor(480 / rows)`, clamped to [1, 40]. */
  cellHeight?: number;
  /** Font size of labels in pixels; the title is 1.25 times larger. Default 12. */
  fontSize?: number;
  /** When given, the image is also written to this path. */
  file?: string;
}

/** What draws heatmaps: `@mie/plot` registers itself as one. */
export interface Plotter {
  /** The heatmap as PNG bytes (also written to `options.file` in Node). */
  renderHeatmap(options: HeatmapOptions): Promise<Uint8Array>;
  /** The heatmap as an SVG document. */
  renderHeatmapSvg(options: HeatmapOptions): Promise<string>;
}

let registered: Plotter | undefined;

/** Makes `plotter` the one `visualize*` methods use (`@mie/plot` calls it when imported). */
export function registerPlotter(plotter: Plotter): void {
  registered = plotter;
}

/**
 * The registered plotter; throws a `MieConfigError` naming `caller` when there is none (install
 * `@mie/plot`, and in a browser bundle import it once).
 */
export function registeredPlotter(caller: string): Plotter {
  if (!registered) {
    throw new MieConfigError(`${caller}: drawing needs the optional package @mie/plot: npm install @mie/plot (and import '@mie/plot' once in a browser bundle).`);
  }
  return registered;
}
