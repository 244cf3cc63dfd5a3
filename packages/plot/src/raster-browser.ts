/**
 * The browser's version of raster.ts (package.json "browser"): an OffscreenCanvas stands in for
 * pureimage, the page's DejaVu Sans (or Verdana, or a sans-serif) for the bundled font, and
 * `convertToBlob` encodes the PNG. No file system: the `file` option is refused (use the bytes).
 */
import { MieConfigError } from '@mie/core';
import type * as NodeRaster from './raster';

export type { Context2D, Raster } from './raster';

interface Canvas {
  getContext(kind: '2d'): NodeRaster.Context2D & {
    createImageData(width: number, height: number): { data: Uint8ClampedArray };
    putImageData(image: { data: Uint8ClampedArray }, x: number, y: number): void;
  };
  convertToBlob(options: { type: string }): Promise<{ arrayBuffer(): Promise<ArrayBuffer> }>;
}

function canvas(width: number, height: number): Canvas {
  const Offscreen = (globalThis as { OffscreenCanvas?: new (w: number, h: number) => Canvas }).OffscreenCanvas;
  if (!Offscreen) throw new MieConfigError('@mie/plot: PNG rendering in a browser needs OffscreenCanvas; use the SVG renderers here.');
  return new Offscreen(width, height);
}

const FAMILY = "'DejaVu Sans', Verdana, sans-serif";
let measure: NodeRaster.Context2D | null = null;

export const font: typeof NodeRaster.font = (size, bold = false) => `${bold ? 'bold ' : ''}${size}px ${FAMILY}`;

export const textWidth: typeof NodeRaster.textWidth = (text, size, bold = false) => {
  measure ??= canvas(1, 1).getContext('2d');
  measure.font = font(size, bold);
  return measure.measureText(text).width;
};

export const makeRaster: typeof NodeRaster.makeRaster = (width, height) => {
  const target = canvas(width, height);
  const ctx = target.getContext('2d');
  const image = ctx.createImageData(width, height);
  let flushed = false;
  return {
    width,
    height,
    data: image.data,
    context: () => {
      if (!flushed) {
        ctx.putImageData(image, 0, 0);
        flushed = true;
      }
      return ctx;
    },
    png: async () => {
      if (!flushed) ctx.putImageData(image, 0, 0);
      const blob = await target.convertToBlob({ type: 'image/png' });
      return new Uint8Array(await blob.arrayBuffer());
    },
  };
};

export const encodePng: typeof NodeRaster.encodePng = async (rgba, width, height) => {
  const raster = makeRaster(width, height);
  raster.data.set(rgba);
  return raster.png();
};

export const writeOutput: typeof NodeRaster.writeOutput = async () => {
  throw new MieConfigError('@mie/plot: the "file" option needs Node; in a browser, use the bytes (or SVG text) the renderer returns.');
};

export const base64: typeof NodeRaster.base64 = (bytes) => {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(binary);
};
