/**
 * The design's `visualizeEncodings()` and `visualizeRotation()`, drawn by this package: the
 * pictures of @mie/positional's encodings (which reach @mie/plot through the plotter registry).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { setBackend, setSeed } from '@mie/core';
import { PositionalEncoding, RotaryPositionEncoding } from '@mie/positional';
import { PNG } from 'pngjs';
import { heatmapColor, layoutHeatmap } from './index';

describe('PositionalEncoding.visualizeEncodings', () => {
  let dir: string;
  beforeAll(async () => {
    await setBackend('cpu');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-positional-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  function pixel(png: PNG, x: number, y: number): [number, number, number] {
    const i = (Math.floor(y) * png.width + Math.floor(x)) * 4;
    return [png.data[i], png.data[i + 1], png.data[i + 2]];
  }

  it('draws the table as a labelled heatmap PNG and writes the file', async () => {
    const pe = new PositionalEncoding({ dModel: 128, maxSeqLength: 200 });
    const file = path.join(dir, 'sinusoidal.png');
    const started = performance.now();
    const bytes = await pe.visualizeEncodings({ file });
    const elapsed = performance.now() - started;
    expect(bytes).toBeInstanceOf(Uint8Array);
    expect(Buffer.from(fs.readFileSync(file)).equals(Buffer.from(bytes))).toBe(true);

    const heatmap = await pe.encodingHeatmap();
    const layout = layoutHeatmap(heatmap);
    const png = PNG.sync.read(Buffer.from(bytes));
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);
    expect([layout.rows, layout.columns]).toEqual([100, 128]);

    // Every cell has the colour of its value.
    const { plot, cellWidth, cellHeight } = layout;
    for (let p = 0; p < 100; p += 7) {
      for (let d = 0; d < 128; d += 3) {
        const colour = pixel(png, plot.x + (d + 0.5) * cellWidth, plot.y + (p + 0.5) * cellHeight);
        expect(colour).toEqual(heatmapColor(heatmap.values[p][d], 'diverging', -1, 1));
      }
    }
    // Along the dimension axis at position 40: sin(40) = 0.75 is red, cos(40) = -0.67 is blue, and
    // dimension 127 (the cosine of a tiny angle, about 1) is nearly the darkest red.
    const at = (d: number) => pixel(png, plot.x + (d + 0.5) * cellWidth, plot.y + 40.5 * cellHeight);
    expect(heatmap.values[40][0]).toBeCloseTo(Math.sin(40), 6);
    expect(heatmap.values[40][1]).toBeCloseTo(Math.cos(40), 6);
    expect(Math.sin(40)).toBeGreaterThan(0.7);
    expect(Math.cos(40)).toBeLessThan(-0.6);
    const [red, blue, last] = [at(0), at(1), at(127)];
    expect(red[0]).toBeGreaterThan(red[2] + 80);
    expect(blue[2]).toBeGreaterThan(blue[0] + 80);
    expect(last[0]).toBeGreaterThan(last[2] + 50);
    expect(last[1]).toBeLessThan(30); // the dark end of the red side

    // Text: every label has dark pixels inside its box (title, axis labels, ticks, colour bar).
    const texts = layout.texts;
    expect(texts.map((t) => t.text)).toEqual(expect.arrayContaining(['Sinusoidal positional encoding (dModel = 128)', 'embedding dimension', 'position', 'encoding value']));
    for (const t of texts) {
      let dark = 0;
      for (let y = Math.floor(t.box.y); y < t.box.y + t.box.height; y++) {
        for (let x = Math.floor(t.box.x); x < t.box.x + t.box.width; x++) {
          const [r, g, b] = pixel(png, x, y);
          if (r < 110 && g < 110 && b < 110) dark++;
        }
      }
      expect([t.text, dark > 2]).toEqual([t.text, true]);
    }
    // Fast enough for interactive use (< 1 s on an idle machine; generous bound for busy CI).
    expect(elapsed).toBeLessThan(3000);
    pe.dispose();
  });

  it('draws learned weights with limits from their values, and an SVG variant', async () => {
    setSeed(5);
    const pe = new PositionalEncoding({ dModel: 16, maxSeqLength: 40, encodingType: 'learned' });
    const heatmap = await pe.encodingHeatmap({ maxPositions: 20, maxDimensions: 10 });
    expect(heatmap.title).toBe('Learned positional encoding (dModel = 16)');
    expect(heatmap.xLabel).toBe('embedding dimension (first 10 of 16)');
    expect(heatmap.values).toHaveLength(20);
    expect(heatmap.values[0]).toHaveLength(10);
    const layout = layoutHeatmap(heatmap);
    expect(layout.vmax).toBeCloseTo(Math.max(...heatmap.values.flat().map(Math.abs)), 6);
    expect(layout.vmin).toBe(-layout.vmax);

    const file = path.join(dir, 'learned.svg');
    const svg = await pe.visualizeEncodingsSvg({ file, maxPositions: 20 });
    expect(fs.readFileSync(file, 'utf8')).toBe(svg);
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg).toContain('>Learned positional encoding (dModel = 16)</text>');
    expect(svg).toContain('>embedding dimension</text>');
    expect(svg).toContain('>position</text>');
    pe.dispose();
  });
});

describe('RotaryPositionEncoding.visualizeRotation', () => {
  let dir: string;
  beforeAll(async () => {
    await setBackend('cpu');
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-rotary-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('draws the rotation angle per position and pair as a PNG, and writes the file', async () => {
    const rope = new RotaryPositionEncoding({ headDim: 64, maxSeqLength: 128 });
    const file = path.join(dir, 'rotation.png');
    const bytes = await rope.visualizeRotation({ file });
    expect(Buffer.from(fs.readFileSync(file)).equals(Buffer.from(bytes))).toBe(true);
    const heatmap = rope.rotationHeatmap();
    const layout = layoutHeatmap(heatmap);
    expect([layout.rows, layout.columns, layout.colorMap]).toEqual([64, 32, 'cyclic']);
    const png = PNG.sync.read(Buffer.from(bytes));
    expect([png.width, png.height]).toEqual([layout.width, layout.height]);

    for (const [p, i] of [[0, 0], [1, 0], [3, 0], [5, 1], [63, 31], [40, 10]]) {
      const angle = p * 10000 ** (-(2 * i) / 64);
      const wrapped = Math.atan2(Math.sin(angle), Math.cos(angle));
      expect(heatmap.values[p][i]).toBeCloseTo(wrapped, 9);
      const x = Math.floor(layout.plot.x + (i + 0.5) * layout.cellWidth);
      const y = Math.floor(layout.plot.y + (p + 0.5) * layout.cellHeight);
      const at = (y * png.width + x) * 4;
      expect([png.data[at], png.data[at + 1], png.data[at + 2]]).toEqual(heatmapColor(wrapped, 'cyclic', -Math.PI, Math.PI));
    }
    // Position 0 is unrotated: the white middle of the cyclic map. Pair 0 at position 3 has turned
    // by 3 rad, near pi: the dark end.
    expect(heatmapColor(heatmap.values[0][5], 'cyclic', -Math.PI, Math.PI)).toEqual([247, 247, 247]);
    expect(Math.max(...heatmapColor(heatmap.values[3][0], 'cyclic', -Math.PI, Math.PI))).toBeLessThan(90);
    for (const t of layout.texts) {
      let dark = 0;
      for (let y = Math.floor(t.box.y); y < t.box.y + t.box.height; y++) {
        for (let x = Math.floor(t.box.x); x < t.box.x + t.box.width; x++) {
          const at = (y * png.width + x) * 4;
          if (png.data[at] < 110 && png.data[at + 1] < 110 && png.data[at + 2] < 110) dark++;
        }
      }
      expect([t.text, dark > 2]).toEqual([t.text, true]);
    }
    expect(layout.texts.map((t) => t.text)).toEqual(expect.arrayContaining(['position p', 'pair i (dims i, i+32); frequency falls with i']));

    const svg = await rope.visualizeRotationSvg({ file: path.join(dir, 'rotation.svg'), maxPositions: 16 });
    expect(svg).toContain('>position p</text>');
    expect(fs.readFileSync(path.join(dir, 'rotation.svg'), 'utf8')).toBe(svg);
    rope.dispose();
  });

  it('names the interleaved pairing on the x axis', () => {
    const rope = new RotaryPositionEncoding({ headDim: 8, maxSeqLength: 16, interleaved: true });
    expect(rope.rotationHeatmap().xLabel).toBe('pair i (dims 2i, 2i+1); frequency falls with i');
    expect(rope.rotationHeatmap().values).toHaveLength(16);
    expect(() => rope.rotationHeatmap({ maxPositions: 17 })).toThrow(/option "maxPositions" must be an integer in \[1, 16\]\. Received: 17\./);
    rope.dispose();
  });
});
