import { PNG } from 'pngjs';
import { renderLineChart } from './line-chart';

describe('renderLineChart', () => {
  it('draws each series in its colour over a white background, with labels', async () => {
    const bytes = await renderLineChart({
      series: [
        { name: 'train loss', points: Array.from({ length: 50 }, (_, i) => [i * 10, 3 * Math.exp(-i / 10) + 0.5] as [number, number]) },
        { name: 'dev WER', points: [[0, 1], [250, 0.6], [490, 0.4]] },
      ],
      title: 'Training',
      xLabel: 'step',
      yLabel: 'value',
      width: 400,
      height: 300,
    });
    const png = PNG.sync.read(Buffer.from(bytes));
    expect([png.width, png.height]).toEqual([400, 300]);
    let blue = 0;
    let red = 0;
    let dark = 0;
    for (let i = 0; i < png.data.length; i += 4) {
      const [r, g, b] = [png.data[i], png.data[i + 1], png.data[i + 2]];
      if (b > 150 && r < 80 && g < 160) blue++;
      if (r > 180 && g < 80 && b < 80) red++;
      if (r < 60 && g < 60 && b < 60) dark++;
    }
    expect(blue).toBeGreaterThan(200); // the first series (and its legend swatch)
    expect(red).toBeGreaterThan(100); // the second
    expect(dark).toBeGreaterThan(300); // frame, ticks and text
    expect([png.data[0], png.data[1], png.data[2]]).toEqual([255, 255, 255]);
  });

  it('draws a series of 200,000 points (a spread of the coordinates overflowed the stack)', async () => {
    const points = Array.from({ length: 200_000 }, (_, i): [number, number] => [i, Math.sin(i / 1000)]);
    const png = await renderLineChart({ series: [{ name: 'long', points }], title: 'long' });
    expect(png.length).toBeGreaterThan(1000);
  }, 30_000);

  it('rejects a chart with no finite point', async () => {
    await expect(renderLineChart({ series: [{ name: 'x', points: [[0, NaN]] }] })).rejects.toThrow(/at least one finite point/);
  });
});
