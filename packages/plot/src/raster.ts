/**
 * Pixels for the PNG renderers, Node's version: pureimage bitmaps (a subset of the Canvas 2D API
 * over an RGBA buffer), the DejaVu Sans font (registered with pureimage once), PNG encoding with
 * pngjs and files written with node:fs. Browser bundles get raster-browser.ts instead (package.json
 * "browser"): the same interface on an OffscreenCanvas. The renderers (heatmap.ts, line-chart.ts)
 * draw through this interface only, so a chart is the same picture in both.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { PNG } from 'pngjs';
import * as PImage from 'pureimage';

/** The drawing calls the renderers use (pureimage's and the browser's 2D contexts both have them). */
export interface Context2D {
  fillStyle: string;
  strokeStyle: string;
  lineWidth: number;
  font: string;
  textAlign: string;
  textBaseline: string;
  fillRect(x: number, y: number, w: number, h: number): void;
  strokeRect(x: number, y: number, w: number, h: number): void;
  fillText(text: string, x: number, y: number): void;
  measureText(text: string): { width: number };
  beginPath(): void;
  moveTo(x: number, y: number): void;
  lineTo(x: number, y: number): void;
  stroke(): void;
  save(): void;
  restore(): void;
  translate(x: number, y: number): void;
  rotate(angle: number): void;
}

/** An RGBA image: pixels written straight into `data` first, then drawing through `context()`. */
export interface Raster {
  readonly width: number;
  readonly height: number;
  /** RGBA bytes, row by row (exact colours, and far faster than paths for cells). */
  readonly data: Uint8Array | Uint8ClampedArray;
  /** The 2D context; call after the direct pixel writes (it sees them). */
  context(): Context2D;
  /** The image as PNG bytes. */
  png(): Promise<Uint8Array>;
}

const FONT = 'MieDejaVuSans';
const BOLD_FONT = 'MieDejaVuSansBold';
let fontsLoaded = false;
let measureContext: Context2D | null = null;

/** Registers DejaVu Sans (regular and bold) with pureimage, once per process. */
function loadFonts(): void {
  if (fontsLoaded) return;
  const dir = path.join(path.dirname(require.resolve('dejavu-fonts-ttf/package.json')), 'ttf');
  PImage.registerFont(path.join(dir, 'DejaVuSans.ttf'), FONT).loadSync();
  PImage.registerFont(path.join(dir, 'DejaVuSans-Bold.ttf'), BOLD_FONT).loadSync();
  fontsLoaded = true;
}

/** The CSS font of `size` pixels, bold or not, in DejaVu Sans. */
export function font(size: number, bold = false): string {
  return `${size}px ${bold ? BOLD_FONT : FONT}`;
}

/** The width of `text` in {@link font}(size, bold). */
export function textWidth(text: string, size: number, bold = false): number {
  loadFonts();
  measureContext ??= PImage.make(1, 1).getContext('2d') as unknown as Context2D;
  measureContext.font = font(size, bold);
  return measureContext.measureText(text).width;
}

/** PNG bytes of an RGBA buffer. */
export async function encodePng(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): Promise<Uint8Array> {
  // One fixed row filter: pngjs otherwise tries all five per row (most of the encoding time), and
  // "Sub" suits runs of equal colour.
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba.buffer, rgba.byteOffset, width * height * 4);
  return new Uint8Array(PNG.sync.write(png, { filterType: 1 }));
}

/** A white-less (zeroed) image of `width` x `height`. */
export function makeRaster(width: number, height: number): Raster {
  loadFonts();
  const bitmap = PImage.make(width, height);
  return {
    width,
    height,
    data: bitmap.data,
    context: () => bitmap.getContext('2d') as unknown as Context2D,
    png: () => encodePng(bitmap.data, width, height),
  };
}

/** Writes a rendered image to `file` (the renderers' `file` option). */
export async function writeOutput(file: string, content: Uint8Array | string): Promise<void> {
  await fs.writeFile(file, content);
}

/** Base64 of bytes (for data URIs). */
export function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}
