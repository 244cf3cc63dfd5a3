import { PNG } from 'pngjs';
import { MieConfigError, MieShapeError } from '@mie/core';
import { renderImageAttention } from './index';

describe('renderImageAttention', () => {
  const pixels = Array.from({ length: 4 * 8 }, (_, i) => (i % 8) / 7); // a 4 x 8 left-to-right ramp
  const maps = [
    [1, 0, 0, 0],
    [0, 0, 0.5, 0.5],
  ];

  it('draws the image, then each map over it in red, scaled', async () => {
    const png = PNG.sync.read(Buffer.from(await renderImageAttention({ pixels, imageSize: [4, 8], grid: [1, 4], maps, labels: ['3', '7'], scale: 4, title: 'strip' })));
    expect(png.width).toBeGreaterThan(32);
    // Find the reddest pixel of each map panel: the first map's is in its left quarter, the second's in its right half.
    const red = (x: number, y: number) => {
      const at = (y * png.width + x) * 4;
      return png.data[at] - png.data[at + 1];
    };
    const left = png.width - 8 - 32; // panels end `gap` (round(14 * 0.6) = 8) before the right edge
    expect(left).toBeGreaterThan(0);
    const column = (x: number) => Array.from({ length: png.height }, (_, y) => red(left + x, y));
    // The left patch is red in the first map's panel only, the right patches in the second's, below it.
    const redRows = (x: number) => column(x).flatMap((r, y) => (r > 100 ? [y] : []));
    expect(redRows(2).length).toBe(16); // one panel: 4 rows x scale 4
    expect(redRows(30).length).toBe(16);
    expect(Math.max(...redRows(2))).toBeLessThan(Math.min(...redRows(30)));
    expect(redRows(10)).toEqual([]); // the second patch: no weight in either map
  });

  it('refuses maps that do not fit the grid and grids that do not divide the image', async () => {
    await expect(renderImageAttention({ pixels, imageSize: [4, 8], grid: [1, 4], maps: [[1, 0]], labels: ['3'] })).rejects.toThrow(MieShapeError);
    await expect(renderImageAttention({ pixels, imageSize: [4, 8], grid: [3, 4], maps, labels: ['3', '7'] })).rejects.toThrow(MieConfigError);
    await expect(renderImageAttention({ pixels, imageSize: [4, 8], grid: [1, 4], maps, labels: ['3'] })).rejects.toThrow(/one string per map/);
  });
});
