import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieConfigError } from '@mie/core';
import { PNG } from 'pngjs';
import { heatmapColor, layoutHeatmap, renderHeatmap, renderHeatmapSvg, type HeatmapLayout, type HeatmapOptions } from './heatmap';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-heatmap-'));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function pixel(png: PNG, x: number, y: number): [number, number, number] {
  const i = (Math.floor(y) * png.width + Math.floor(x)) * 4;
  return [png.data[i], png.data[i + 1], png.data[i + 2]];
}

function cellCentre(layout: HeatmapLayout, row: number, column: number): [number, number] {
  return [layout.plot.x + (column + 0.5) * layout.cellWidth, layout.plot.y + (row + 0.5) * layout.cellHeight];
}

/** Dark (text-coloured) pixels inside a box. */
function darkPixels(png: PNG, box: { x: number; y: number; width: number; height: number }): number {
  let dark = 0;
  for (let y = Math.max(0, Math.floor(box.y)); y < Math.min(png.height, box.y + box.height); y++) {
    for (let x = Math.max(0, Math.floor(box.x)); x < Math.min(png.width, box.x + box.width); x++) {
      const [r, g, b] = pixel(png, x, y);
      if (r < 110 && g < 110 && b < 110) dark++;
    }
  }
  return dark;
}

const tokens = ['<s>', 'The', 'quick', 'brown', 'fox', 'jumps', 'over', 'the', 'lazy', 'dog'];
// A causal attention map: row i attends uniformly to keys 0..i.
const attention: HeatmapOptions = {
  values: tokens.map((_, i) => tokens.map((__, j) => (j <= i ? 1 / (i + 1) : 0))),
  title: 'Attention, layer 0 head 0',
  xLabel: 'key',
  yLabel: 'query',
  xTickLabels: tokens,
  yTickLabels: tokens,
  colorbarLabel: 'weight',
};

describe('heatmapColor', () => {
  it('maps the diverging scale blue -> white -> red', () => {
    expect(heatmapColor(-1, 'diverging', -1, 1)).toEqual([5, 48, 97]);
    expect(heatmapColor(0, 'diverging', -1, 1)).toEqual([247, 247, 247]);
    expect(heatmapColor(1, 'diverging', -1, 1)).toEqual([103, 0, 31]);
    expect(heatmapColor(5, 'diverging', -1, 1)).toEqual([103, 0, 31]); // clamped
    const [r, , b] = heatmapColor(0.5, 'diverging', -1, 1);
    expect(r).toBeGreaterThan(b);
  });

  it('maps viridis dark -> yellow, closes the cyclic map, and greys out non-finite values', () => {
    expect(heatmapColor(0, 'sequential', 0, 1)).toEqual([68, 1, 84]);
    expect(heatmapColor(1, 'sequential', 0, 1)).toEqual([253, 231, 37]);
    expect(heatmapColor(-Math.PI, 'cyclic', -Math.PI, Math.PI)).toEqual(heatmapColor(Math.PI, 'cyclic', -Math.PI, Math.PI));
    expect(heatmapColor(Number.NaN, 'diverging', -1, 1)).toEqual([200, 200, 200]);
  });
});

describe('layoutHeatmap', () => {
  it('picks the colour map and limits from the values', () => {
    expect(layoutHeatmap({ values: [[-2, 1]] })).toMatchObject({ colorMap: 'diverging', vmin: -2, vmax: 2 });
    expect(layoutHeatmap({ values: [[0.25, 1]] })).toMatchObject({ colorMap: 'sequential', vmin: 0.25, vmax: 1 });
    expect(layoutHeatmap({ values: [[3, 3]] })).toMatchObject({ vmin: 2.5, vmax: 3.5 });
    expect(layoutHeatmap({ values: [[-2, 1]], vmax: 4 })).toMatchObject({ vmin: -4, vmax: 4 });
    expect(layoutHeatmap({ values: [[0, 1]], colorMap: 'cyclic', vmin: -1, vmax: 1 })).toMatchObject({ colorMap: 'cyclic', vmin: -1, vmax: 1 });
  });

  it('sizes cells to about 480 pixels and thins numeric tick labels to round steps', () => {
    const values = Array.from({ length: 100 }, () => new Array<number>(128).fill(0));
    const layout = layoutHeatmap({ values });
    expect([layout.cellWidth, layout.cellHeight]).toEqual([3, 4]);
    expect(layout.plot).toMatchObject({ width: 384, height: 400 });
    const xLabels = layout.xTicks.map((t) => Number(t.label));
    expect(xLabels[0]).toBe(0);
    expect([1, 2, 5, 10, 20, 50]).toContain(xLabels[1]);
    expect(layout.yTicks.map((t) => t.label)).toEqual(['0', '10', '20', '30', '40', '50', '60', '70', '80', '90']);
    // No two x tick labels overlap.
    const boxes = layout.texts.filter((t) => xLabels.map(String).includes(t.text) && t.box.y > layout.plot.y + layout.plot.height);
    for (let i = 1; i < boxes.length; i++) expect(boxes[i].box.x).toBeGreaterThan(boxes[i - 1].box.x + boxes[i - 1].box.width);
  });

  it('shows every token label, vertical when wider than a cell', () => {
    const layout = layoutHeatmap(attention);
    expect(layout.xTicks.map((t) => t.label)).toEqual(tokens);
    expect(layout.yTicks.map((t) => t.label)).toEqual(tokens);
    const xLabelTexts = layout.texts.filter((t) => t.vertical && tokens.includes(t.text));
    expect(xLabelTexts).toHaveLength(tokens.length);
    const narrow = layoutHeatmap({ ...attention, cellWidth: 60 });
    expect(narrow.texts.filter((t) => t.vertical && tokens.includes(t.text))).toHaveLength(0);
  });

  it('keeps every piece of text inside the image', () => {
    for (const options of [attention, { values: [[1]], title: 'A long title that is wider than the plot itself', xLabel: 'x', yLabel: 'y' }]) {
      const layout = layoutHeatmap(options);
      for (const t of layout.texts) {
        expect(t.box.x).toBeGreaterThanOrEqual(0);
        expect(t.box.y).toBeGreaterThanOrEqual(0);
        expect(t.box.x + t.box.width).toBeLessThanOrEqual(layout.width);
        expect(t.box.y + t.box.height).toBeLessThanOrEqual(layout.height);
      }
    }
  });

  it.each([
    ['no values', { values: [] }, /renderHeatmap: option "values" must be a non-empty array of non-empty rows of numbers\. Received: \[\]\./],
    ['ragged rows', { values: [[1, 2], [3]] }, /option "values" must be rectangular: row 0 has 2 entries, row 1 differs\. Received: \[3\]\./],
    ['strings', { values: [[1, '2']] }, /option "values" must hold numbers only \(row 0\)/],
    ['too few tick labels', { values: [[1, 2]], xTickLabels: ['a'] }, /option "xTickLabels" must be an array of 2 strings, one per column\./],
    ['vmin above vmax', { values: [[1]], vmin: 2, vmax: 1 }, /option "vmax" must be greater than vmin \(2\)\. Received: 1\./],
    ['an unknown colour map', { values: [[1]], colorMap: 'jet' }, /option "colorMap" must be 'auto', 'diverging', 'sequential' or 'cyclic'\. Received: "jet"\./],
    ['a zero cell width', { values: [[1]], cellWidth: 0 }, /option "cellWidth" must be an integer in \[1, 400\]\. Received: 0\./],
    ['bad colour bar ticks', { values: [[1]], colorbarTicks: [{ value: 'x', label: 'x' }] }, /option "colorbarTicks" must be an array of \{ value: finite number, label: string \}/],
  ])('rejects %s with MieConfigError', (_label, options, message) => {
    expect(() => layoutHeatmap(options as never)).toThrow(MieConfigError);
    expect(() => layoutHeatmap(options as never)).toThrow(message);
  });
});

describe('renderHeatmap', () => {
  it('renders an attention map with token labels, and writes the file', async () => {
    const file = path.join(dir, 'attention.png');
    const bytes = await renderHeatmap({ ...attention, file });
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect([...bytes.slice(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]); // PNG signature
    expect(Buffer.from(fs.readFileSync(file)).equals(Buffer.from(bytes))).toBe(true);
    const png = PNG.sync.read(Buffer.from(bytes));
    const layout = layoutHeatmap(attention);
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    // Cells: exactly their colour on the sequential map.
    for (let i = 0; i < tokens.length; i++) {
      for (let j = 0; j < tokens.length; j++) {
        expect(pixel(png, ...cellCentre(layout, i, j))).toEqual(heatmapColor(attention.values[i][j], 'sequential', 0, 1));
      }
    }
    // Text in every label box; white outside the plot, colour bar and text, in the corners.
    for (const t of layout.texts) expect([t.text, darkPixels(png, t.box) > 2]).toEqual([t.text, true]);
    expect(pixel(png, 1, 1)).toEqual([255, 255, 255]);
    expect(pixel(png, png.width - 2, png.height - 2)).toEqual([255, 255, 255]);
  });

  it('draws the colour bar from vmax at the top to vmin at the bottom', async () => {
    const options: HeatmapOptions = { values: [[-3, 0, 3]], xLabel: 'x', yLabel: 'y', cellHeight: 100 };
    const png = PNG.sync.read(Buffer.from(await renderHeatmap(options)));
    const { colorbar } = layoutHeatmap(options);
    const x = colorbar.x + colorbar.width / 2;
    const [top, middle, bottom] = [colorbar.y + 1, colorbar.y + colorbar.height / 2, colorbar.y + colorbar.height - 2].map((y) => pixel(png, x, y));
    expect(top[0]).toBeGreaterThan(top[2]); // red
    expect(bottom[2]).toBeGreaterThan(bottom[0]); // blue
    expect(Math.min(...middle)).toBeGreaterThan(220); // near white
  });

  it('renders a 100 x 128 table in well under a few seconds', async () => {
    const values = Array.from({ length: 100 }, (_, p) => Array.from({ length: 128 }, (_, d) => Math.sin(p * 0.1 + d)));
    const options = { values, title: 'timing', xLabel: 'dimension', yLabel: 'position', colorbarLabel: 'value' };
    await renderHeatmap(options); // fonts load once per process
    const started = performance.now();
    await renderHeatmap(options);
    // About 0.1-0.3 s on an idle machine; the bound leaves room for a busy CI runner.
    expect(performance.now() - started).toBeLessThan(3000);
  });
});

describe('renderHeatmapSvg', () => {
  it('writes an SVG with vector text, ticks, a gradient colour bar and the cells as an embedded image', async () => {
    const file = path.join(dir, 'attention.svg');
    const options = { ...attention, xTickLabels: [...tokens.slice(0, 9), 'a<b&"c"'] };
    const svg = await renderHeatmapSvg({ ...options, file });
    expect(fs.readFileSync(file, 'utf8')).toBe(svg);
    const layout = layoutHeatmap(options);
    expect(svg).toMatch(new RegExp(`^<svg xmlns="http://www.w3.org/2000/svg"[^>]* width="${layout.width}" height="${layout.height}"`));
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).toContain('<title>Attention, layer 0 head 0</title>');
    for (const label of ['key', 'query', 'weight', 'quick', 'a&lt;b&amp;&quot;c&quot;']) expect(svg).toContain(`>${label}</text>`);
    expect(svg).toContain('transform="rotate(-90');
    expect(svg).toContain('<linearGradient id="colorbar"');
    // Balanced elements: every opening tag is closed or self-closing.
    const opened = (svg.match(/<(svg|g|text|defs|linearGradient|title)\b/g) ?? []).length;
    const closed = (svg.match(/<\/(svg|g|text|defs|linearGradient|title)>/g) ?? []).length;
    expect(opened).toBe(closed);

    // The embedded image holds one pixel per cell in the cell colours.
    const uri = /xlink:href="data:image\/png;base64,([^"]+)"/.exec(svg);
    expect(uri).not.toBeNull();
    const cells = PNG.sync.read(Buffer.from((uri as RegExpExecArray)[1], 'base64'));
    expect([cells.width, cells.height]).toEqual([tokens.length, tokens.length]);
    expect(pixel(cells, 0, 0)).toEqual(heatmapColor(1, 'sequential', 0, 1));
    expect(pixel(cells, 5, 2)).toEqual(heatmapColor(0, 'sequential', 0, 1));
  });
});
