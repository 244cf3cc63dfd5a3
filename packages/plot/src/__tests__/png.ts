/** PNG reading for tests, through pngjs. */
import { PNG } from 'pngjs';

/** A decoded image: `data` is RGBA, row by row. */
export interface DecodedPng {
  width: number;
  height: number;
  data: Uint8Array;
}

/** Decodes PNG bytes. */
export function decodePng(bytes: Uint8Array): DecodedPng {
  const png = PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return { width: png.width, height: png.height, data: new Uint8Array(png.data.buffer, png.data.byteOffset, png.data.byteLength) };
}

/** The RGB colour at pixel (x, y). */
export function pixelAt(png: DecodedPng, x: number, y: number): [number, number, number] {
  const i = (Math.floor(y) * png.width + Math.floor(x)) * 4;
  return [png.data[i], png.data[i + 1], png.data[i + 2]];
}
