/**
 * Where a vision model looks: a grey image drawn once, then once per output token with that
 * token's attention over the image's patch grid laid over it in red (Xu et al. 2015, "Show,
 * Attend and Tell", figure 2). For an image-to-sequence model, each map is one emitted token's
 * cross-attention over the patches (mean over heads, say), reshaped to the patch grid.
 */
import { MieConfigError, MieShapeError, checkOptions, errorMessage } from '@mie/core';
import { font, makeRaster, textWidth, writeOutput } from './raster';

/** Options of {@link renderImageAttention}. */
export interface ImageAttentionOptions {
  /** The image: `height * width` grey values in [0, 1], row-major. */
  pixels: ArrayLike<number>;
  /** `[height, width]` of the image in pixels. */
  imageSize: [number, number];
  /** `[rows, columns]` of the patch grid the maps cover (each patch `height / rows` x `width / columns` pixels). */
  grid: [number, number];
  /** One map per output token: `rows * columns` non-negative weights, row-major over the grid. */
  maps: ArrayLike<number>[];
  /** One label per map (the emitted token), drawn left of its panel. */
  labels: string[];
  /** Title above the panels. Default none. */
  title?: string;
  /** Screen pixels per image pixel. Default 3. */
  scale?: number;
  /** Font size in pixels. Default 14. */
  fontSize?: number;
  /** When given, the PNG is also written to this path. */
  file?: string;
}

const NAME = 'renderImageAttention';
const OPTIONS = ['pixels', 'imageSize', 'grid', 'maps', 'labels', 'title', 'scale', 'fontSize', 'file'] as const;

/**
 * A PNG: the image, then one panel per map with the map over the image (red, opacity
 * proportional to the weight over the map's largest weight), each labelled with its token.
 * Resolves to the PNG bytes (and writes them to `file` when given).
 */
export async function renderImageAttention(options: ImageAttentionOptions): Promise<Uint8Array> {
  const { pixels, imageSize, grid, maps, labels, title, scale = 3, fontSize = 14, file } = checkOptions(NAME, options, OPTIONS);
  const isPair = (value: unknown): value is [number, number] =>
    Array.isArray(value) && value.length === 2 && value.every((v) => Number.isSafeInteger(v) && v > 0);
  if (!isPair(imageSize)) throw new MieConfigError(errorMessage(NAME, 'option "imageSize"', 'must be [height, width], two positive integers', imageSize));
  if (!isPair(grid) || imageSize[0] % grid[0] !== 0 || imageSize[1] % grid[1] !== 0) {
    throw new MieConfigError(errorMessage(NAME, 'option "grid"', `must be [rows, columns] dividing imageSize [${imageSize.join(', ')}]`, grid));
  }
  const [height, width] = imageSize;
  const [rows, columns] = grid;
  if (!pixels || pixels.length !== height * width) throw new MieShapeError(errorMessage(NAME, 'option "pixels"', `must hold height * width = ${height * width} values`, pixels?.length));
  if (!Array.isArray(maps) || maps.some((map) => !map || map.length !== rows * columns)) {
    throw new MieShapeError(errorMessage(NAME, 'option "maps"', `must be an array of maps of rows * columns = ${rows * columns} weights`, maps));
  }
  if (!Array.isArray(labels) || labels.length !== maps.length || !labels.every((l) => typeof l === 'string')) {
    throw new MieConfigError(errorMessage(NAME, 'option "labels"', `must hold one string per map (${maps.length})`, labels));
  }
  if (!(Number.isSafeInteger(scale) && scale >= 1 && scale <= 32)) throw new MieConfigError(errorMessage(NAME, 'option "scale"', 'must be an integer in [1, 32]', scale));

  const gap = Math.round(fontSize * 0.6);
  const labelWidth = Math.ceil(Math.max(textWidth('image', fontSize), ...labels.map((l) => textWidth(l, fontSize, true)))) + 2 * gap;
  const titleHeight = title ? Math.round(fontSize * 2.2) : gap;
  const panelWidth = width * scale;
  const panelHeight = height * scale;
  const canvasWidth = labelWidth + panelWidth + gap;
  const canvasHeight = titleHeight + (maps.length + 1) * (panelHeight + gap);
  const raster = makeRaster(canvasWidth, canvasHeight);
  const data = raster.data;
  data.fill(255);
  const patchHeight = height / rows;
  const patchWidth = width / columns;

  // Panel 0 is the plain image; panel k + 1 blends map k over it in red.
  for (let panel = 0; panel <= maps.length; panel++) {
    const map = panel > 0 ? maps[panel - 1] : null;
    let peak = 0;
    if (map) for (let i = 0; i < map.length; i++) peak = Math.max(peak, map[i]);
    const top = titleHeight + panel * (panelHeight + gap);
    for (let y = 0; y < panelHeight; y++) {
      const sy = Math.floor(y / scale);
      for (let x = 0; x < panelWidth; x++) {
        const sx = Math.floor(x / scale);
        const grey = Math.round(255 * Math.min(1, Math.max(0, pixels[sy * width + sx])));
        const weight = map && peak > 0 ? map[Math.floor(sy / patchHeight) * columns + Math.floor(sx / patchWidth)] / peak : 0;
        const alpha = 0.75 * Math.max(0, Math.min(1, weight));
        const at = ((top + y) * canvasWidth + labelWidth + x) * 4;
        data[at] = Math.round(grey * (1 - alpha) + 255 * alpha);
        data[at + 1] = Math.round(grey * (1 - alpha) + 40 * alpha);
        data[at + 2] = Math.round(grey * (1 - alpha) + 40 * alpha);
        data[at + 3] = 255;
      }
    }
  }
  const ctx = raster.context();
  ctx.fillStyle = '#000000';
  if (title) {
    ctx.font = font(fontSize * 1.15, true);
    ctx.fillText(title, gap, Math.round(fontSize * 1.5));
  }
  for (let panel = 0; panel <= maps.length; panel++) {
    const bold = panel > 0;
    const text = panel > 0 ? labels[panel - 1] : 'image';
    ctx.font = font(fontSize, bold);
    const y = titleHeight + panel * (panelHeight + gap) + panelHeight / 2 + fontSize * 0.35;
    ctx.fillText(text, labelWidth - gap - textWidth(text, fontSize, bold), y);
  }
  const png = await raster.png();
  if (file !== undefined) await writeOutput(file, png);
  return png;
}
