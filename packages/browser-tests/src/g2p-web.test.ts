/// <reference lib="dom" />
/**
 * The web app (apps/g2p-web, built by `pnpm web:build`) in headless Chromium: typing words gives
 * the phonemes @mie/g2p-en gives in Node, on wasm, webgl and webgpu; the page trains its
 * classifier; a screenshot is written (MIE_WEB_SCREENSHOT names where; the app's README shows one);
 * the digits panel reads strips as the shipped model does in Node, and a 1 drawn with the mouse.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { BaseModel, setBackend, tf } from '@mie/core';
import { pronounce } from '@mie/g2p-en';
import '@mie/transformer'; // registers ImageToSequenceTransformer for BaseModel.load
import type { ImageToSequenceTransformer } from '@mie/transformer';
import { launchChromium, serveDirectory } from './chromium';
import { PACKAGE_ROOT, chromiumMissing, describeWhen } from './__tests__/environment';

jest.setTimeout(600_000);

const APP = join(PACKAGE_ROOT, '..', '..', 'apps', 'g2p-web', 'dist');
const WORDS = ['hello', 'world', 'Phoneme', "o'clock", 'transformer'];
const BACKENDS = ['wasm', 'webgl', 'webgpu'] as const;
const appMissing = () => chromiumMissing() ?? (existsSync(join(APP, 'index.html')) ? null : `${APP} is not built (pnpm web:build)`);

async function typeWord(page: Page, word: string): Promise<string> {
  const input = page.locator('[data-testid="word"]');
  await input.fill(word);
  await input.press('Enter');
  const key = word.trim().toLowerCase();
  await page.waitForFunction(
    (w) => (document.querySelector('[data-testid="phonemes"]') as HTMLElement).dataset.word === w || document.querySelector('[data-testid="error"]')!.textContent !== '',
    key,
    { timeout: 120_000 },
  );
  const error = await page.textContent('[data-testid="error"]');
  if (error) throw new Error(`the page said: ${error}`);
  return (await page.textContent('[data-testid="phonemes"]'))!;
}

describeWhen(appMissing(), 'the g2p-web app in headless Chromium', () => {
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;
  let expected: string[];
  const shots = mkdtempSync(join(tmpdir(), 'g2p-web-'));

  beforeAll(async () => {
    await setBackend('wasm');
    expected = (await pronounce(WORDS)).map((phonemes) => phonemes.join(' '));
    server = await serveDirectory(APP);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    rmSync(shots, { recursive: true, force: true });
  });

  it.each(BACKENDS)('%s: typed words get the phonemes of @mie/g2p-en in Node, the map and the timing', async (backend) => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') errors.push(message.text());
    });
    try {
      await page.goto(`${server.url}?backend=${backend}`);
      await page.waitForFunction(() => (globalThis as { mieReady?: boolean; mieLoadError?: string }).mieReady || (globalThis as { mieLoadError?: string }).mieLoadError, null, { timeout: 120_000 });
      expect(await page.textContent('[data-testid="device"]')).toMatch(new RegExp(`^${backend} \\((cpu|gpu)\\)`));
      // SwiftShader runs WebGPU on the CPU, slowly: two of the words there.
      const words = backend === 'webgpu' ? [WORDS[0], WORDS[4]] : WORDS;
      const got: string[] = [];
      for (const word of words) got.push(await typeWord(page, word));
      expect(got).toEqual(words.map((word) => expected[WORDS.indexOf(word)]));
      expect(await page.textContent('[data-testid="beam"]')).toMatch(/^[A-Z]+( [A-Z]+)*$/);
      expect(await page.textContent('[data-testid="time"]')).toMatch(/^\d+ ms greedy, \d+ ms with 5 beams$/);
      expect(await page.locator('[data-testid="attention"] svg').count()).toBe(1);
      // The last word's map: its title, the cells (an image), a tick label per letter and phoneme.
      expect(await page.textContent('[data-testid="attention"] svg title')).toBe('"transformer": cross-attention (last layer, mean over heads)');
      expect(await page.locator('[data-testid="attention"] svg image').count()).toBe(1);
      const ticks = await page.locator('[data-testid="attention"] svg text').allTextContents();
      for (const token of [...'transformer'.split(''), ...expected[4].split(' '), '</s>']) expect(ticks).toContain(token);
      if (backend === 'wasm') {
        await page.click('[data-testid="train"]');
        await page.waitForFunction(() => /held-out flowers right/.test(document.querySelector('[data-testid="train-status"]')!.textContent ?? ''), null, { timeout: 300_000 });
        const [, right] = /: (\d+)\/30 held-out/.exec((await page.textContent('[data-testid="train-status"]'))!)!;
        expect(Number(right)).toBeGreaterThanOrEqual(25);
        expect(await page.locator('[data-testid="loss-curve"] polyline').count()).toBe(1);
        await page.screenshot({ path: process.env.MIE_WEB_SCREENSHOT ?? join(shots, 'g2p-web.png'), fullPage: true });
      }
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});

describeWhen(appMissing(), 'the digits panel of the g2p-web app in headless Chromium', () => {
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;

  beforeAll(async () => {
    server = await serveDirectory(APP);
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('wasm: reads a strip as the shipped model does in Node, and a drawn 1 as "1", with one attention panel per digit and the end', async () => {
    await setBackend('wasm');
    // Two strips: vertical bars in the first three boxes (ones), and a seeded pattern.
    const bars = Array.from({ length: 28 * 140 }, (_, i) => {
      const [y, x] = [Math.floor(i / 140), i % 140];
      return x < 84 && x % 28 >= 13 && x % 28 <= 15 && y >= 4 && y < 24 ? 1 : 0;
    });
    const pattern = Array.from({ length: 28 * 140 }, (_, i) => (Math.sin(i * 12.9898) * 43758.5453) % 1 > 0.7 ? 1 : 0);
    const model = (await BaseModel.load(join(APP, 'digits'))) as ImageToSequenceTransformer;
    const expected: string[] = [];
    for (const pixels of [bars, pattern]) {
      const images = tf.tensor4d(pixels, [1, 28, 140, 1]);
      const { sequences } = await model.generate(images, { maxNewTokens: 6 });
      images.dispose();
      expected.push(sequences[0].filter((token) => token >= 3).map((token) => token - 3).join(''));
    }
    model.dispose();

    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const errors: string[] = [];
    page.on('pageerror', (error) => errors.push(error.message));
    try {
      await page.goto(`${server.url}?backend=wasm`);
      await page.waitForFunction(() => (globalThis as { mieReady?: boolean; mieLoadError?: string }).mieReady || (globalThis as { mieLoadError?: string }).mieLoadError, null, { timeout: 120_000 });
      const read = (pixels: number[]) => page.evaluate((p) => (globalThis as unknown as { mieReadDigits(p: number[]): Promise<string> }).mieReadDigits(p), pixels);
      expect([await read(bars), await read(pattern)]).toEqual(expected);
      // Draw a 1 in the second box with the mouse: the page moves it to the first slot and reads it.
      const box = (await page.locator('[data-testid="digit-canvas"]').boundingBox())!;
      const cell = box.width / 5;
      await page.mouse.move(box.x + 1.5 * cell, box.y + 0.15 * box.height);
      await page.mouse.down();
      for (let step = 1; step <= 10; step++) await page.mouse.move(box.x + 1.5 * cell, box.y + (0.15 + 0.07 * step) * box.height);
      await page.mouse.up();
      await page.click('[data-testid="digit-read"]');
      await page.waitForFunction(() => (document.querySelector('[data-testid="digits"]') as HTMLElement).dataset.digits !== undefined, null, { timeout: 60_000 });
      expect(await page.textContent('[data-testid="digits"]')).toBe('1');
      expect(await page.getAttribute('[data-testid="digit-attention"]', 'data-panels')).toBe('2');
      expect(await page.textContent('[data-testid="digit-time"]')).toMatch(/^\d+ ms$/);
      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });
});
