import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieConfigError, MieShapeError } from '@mie/core';
import { decodePng, pixelAt, type DecodedPng } from './__tests__/png';
import { heatmapColor } from './drawing';
import { layoutLogitLens, renderLogitLens, renderLogitLensSvg, type LogitLensTable } from './logit-lens';

let dir: string;
beforeAll(() => {
  dir = process.env.MIE_HEATMAP_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mie-logit-lens-'));
});
afterAll(() => {
  if (!process.env.MIE_HEATMAP_DIR) fs.rmSync(dir, { recursive: true, force: true });
});

/** A G2P decoder's lens for "cat": the early layers guess, the output is sure. */
function table(): LogitLensTable {
  const guesses = [
    [['K', 0.31], ['AH0', 0.12], ['S', 0.2], ['</s>', 0.05]],
    [['K', 0.62], ['AE1', 0.41], ['T', 0.38], ['</s>', 0.3]],
    [['K', 0.97], ['AE1', 0.93], ['T', 0.99], ['</s>', 0.96]],
  ] as const;
  return {
    layers: ['layer 0', 'layer 1', 'output'],
    positions: ['<s>', 'K', 'AE1', 'T'],
    cells: guesses.map((row) => row.map(([token, probability]) => ({ token, probability }))),
  };
}

/** Dark pixels (text) inside a box. */
function inkIn(png: DecodedPng, box: { x: number; y: number; width: number; height: number }, background: number[]): number {
  let ink = 0;
  for (let y = Math.floor(box.y); y < box.y + box.height; y++) {
    for (let x = Math.floor(box.x); x < box.x + box.width; x++) {
      const pixel = pixelAt(png, x, y);
      if (pixel.some((v, i) => Math.abs(v - background[i]) > 60)) ink++;
    }
  }
  return ink;
}

describe('renderLogitLens', () => {
  it('draws a cell per layer and position, shaded by its probability, with the token and probability written in it', async () => {
    const file = path.join(dir, 'logit-lens.png');
    const lens = table();
    const png = decodePng(await renderLogitLens(lens, { title: 'logit lens: cat', file }));
    const layout = layoutLogitLens(lens, { title: 'logit lens: cat' });
    expect(fs.existsSync(file)).toBe(true);
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    expect([layout.rows, layout.columns, layout.cells.length, layout.cells[0].length]).toEqual([3, 4, 3, 4]);
    lens.cells.forEach((row, r) =>
      row.forEach((cell, c) => {
        const { rect, fill, token, probability } = layout.cells[r][c];
        expect(fill).toEqual(heatmapColor(cell.probability, 'sequential', 0, 1));
        expect(pixelAt(png, rect.x + 1, rect.y + 1)).toEqual(fill); // a corner, clear of the text
        expect(token.text).toBe(cell.token);
        expect(probability.text).toBe(cell.probability.toFixed(2));
        expect(inkIn(png, token.box, fill)).toBeGreaterThan(3);
      }),
    );
    // Brighter with the probability: the output row's cells are lighter than layer 0's.
    const luminance = ([r, g, b]: number[]) => 0.2126 * r + 0.7152 * g + 0.0722 * b;
    expect(luminance(layout.cells[2][1].fill)).toBeGreaterThan(luminance(layout.cells[0][1].fill) + 80);
    // White text on the dark cells, dark text on the light ones.
    expect(layout.cells[0][3].textColor).toEqual([255, 255, 255]);
    expect(layout.cells[2][2].textColor).toEqual([34, 34, 34]);
    const labels = layout.texts.map((t) => t.text);
    for (const label of ['logit lens: cat', 'layer 0', 'output', '<s>', 'AE1', 'probability', '0.0', '1.0']) expect(labels).toContain(label);
  });

  it("changes a cell's colour with its probability, and only that cell's", async () => {
    const before = table();
    const after = table();
    after.cells[1][2] = { token: 'T', probability: 0.9 };
    const [a, b] = [decodePng(await renderLogitLens(before)), decodePng(await renderLogitLens(after))];
    const { cells } = layoutLogitLens(before);
    const corner = (r: number, c: number): [number, number] => [cells[r][c].rect.x + 1, cells[r][c].rect.y + 1];
    expect(pixelAt(a, ...corner(1, 2))).toEqual(heatmapColor(0.38, 'sequential', 0, 1));
    expect(pixelAt(b, ...corner(1, 2))).toEqual(heatmapColor(0.9, 'sequential', 0, 1));
    expect(pixelAt(b, ...corner(1, 1))).toEqual(pixelAt(a, ...corner(1, 1)));
  });

  it('cuts tokens wider than their cell and quotes blank ones', () => {
    const lens = table();
    lens.cells[0][0] = { token: 'an-unusually-long-token-text', probability: 0.5 };
    lens.cells[0][1] = { token: ' ', probability: 0.5 };
    const layout = layoutLogitLens(lens, { cellWidth: 60 });
    expect(layout.cellWidth).toBe(60);
    const long = layout.cells[0][0].token;
    expect(long.text.endsWith('\u2026')).toBe(true);
    expect(long.box.width).toBeLessThanOrEqual(60 - 1 - 4);
    expect(layout.cells[0][1].token.text).toBe('" "');
    expect(layoutLogitLens(lens).cellWidth).toBe(160); // the default fits tokens up to 160 pixels
  });
});

describe('renderLogitLensSvg', () => {
  it('writes one rect per cell in its colour and every label as text', async () => {
    const file = path.join(dir, 'logit-lens.svg');
    const lens = table();
    const svg = await renderLogitLensSvg(lens, { title: 'lens & co', file });
    expect(fs.readFileSync(file, 'utf8')).toBe(svg);
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('<title>lens &amp; co</title>');
    const rects = [...svg.matchAll(/<rect x="\d+" y="\d+" width="\d+" height="\d+" fill="(#[0-9a-f]{6})"\/>/g)];
    expect(rects).toHaveLength(12);
    const hex = (rgb: number[]) => `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
    expect(rects.map((r) => r[1])).toEqual(lens.cells.flat().map((cell) => hex(heatmapColor(cell.probability, 'sequential', 0, 1))));
    for (const label of ['layer 1', 'output', '&lt;s&gt;', '&lt;/s&gt;', 'AE1', '0.93', '0.05', 'probability']) expect(svg).toContain(`>${label}</text>`);
    expect(svg).toContain('<g fill="#ffffff">');
    const opened = (svg.match(/<(svg|g|text|defs|linearGradient|title)\b/g) ?? []).length;
    const closed = (svg.match(/<\/(svg|g|text|defs|linearGradient|title)>/g) ?? []).length;
    expect(opened).toBe(closed);
  });
});

describe('logit lens errors', () => {
  const good = table();
  it.each([
    ['no table', undefined, 'renderLogitLens: argument "table" must be an object { layers, positions, cells }. Received: undefined.'],
    ['no layers', { ...good, layers: [] }, 'argument "table" field "layers" must be a non-empty array of strings. Received: [].'],
    ['no positions', { ...good, positions: [] }, 'field "positions" must be a non-empty array of strings'],
    ['a row missing', { ...good, cells: good.cells.slice(1) }, 'field "cells" must hold one row per layer (3). Received: "2 rows".'],
    ['a ragged row', { ...good, cells: [good.cells[0], good.cells[1].slice(1), good.cells[2]] }, 'one cell per position (4) in every row, row 1 differs. Received: "3 cells".'],
    ['a probability above 1', { ...good, cells: [good.cells[0], good.cells[1], [{ token: 'K', probability: 1.2 }, ...good.cells[2].slice(1)]] }, 'must hold probabilities in [0, 1]; cell [2][0] (token "K") is not. Received: 1.2.'],
    ['a negative probability', { ...good, cells: [[{ token: 'K', probability: -0.5 }, ...good.cells[0].slice(1)], good.cells[1], good.cells[2]] }, 'cell [0][0] (token "K") is not. Received: -0.5.'],
    ['a missing token', { ...good, cells: [[{ probability: 0.5 }, ...good.cells[0].slice(1)], good.cells[1], good.cells[2]] }, 'cell [0][0] has no token string'],
  ])('rejects %s with MieShapeError', async (_label, given, message) => {
    await expect(renderLogitLens(given as never)).rejects.toThrow(MieShapeError);
    await expect(renderLogitLens(given as never)).rejects.toThrow(message);
  });

  it('rejects bad options with MieConfigError naming the function and option', async () => {
    await expect(renderLogitLens(good, { cellWidth: 0 })).rejects.toThrow(MieConfigError);
    await expect(renderLogitLensSvg(good, { fontSize: 2.5 })).rejects.toThrow('renderLogitLensSvg: option "fontSize" must be an integer in [1, 200]. Received: 2.5.');
    await expect(renderLogitLens(good, { colorMap: 'sequential' } as never)).rejects.toThrow('renderLogitLens: unknown option "colorMap"');
    expect(() => layoutLogitLens(good, { title: 3 } as never)).toThrow('layoutLogitLens: option "title" must be a string. Received: 3.');
  });
});
