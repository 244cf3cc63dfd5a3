/**
 * Headless Chromium (Debian's, on SwiftShader): the module battery's backend agreement for every
 * module on wasm, webgl and webgpu, from a page bundled with esbuild for the browser.
 */
import type { Browser, Page } from 'playwright-core';
import type { DeviceInfo } from '@mie/core';
import { launchChromium, openPage, serveDirectory } from './chromium';
import { MODULE_CASES } from './module-cases';
import { GPU_TOLERANCE, type CaseOutcome } from './run-battery';
import { PACKAGE_ROOT, chromiumMissing, describeWhen } from './__tests__/environment';

jest.setTimeout(600_000);

const BACKENDS = ['wasm', 'webgl', 'webgpu'] as const;

describeWhen(chromiumMissing(), 'headless Chromium: backend agreement of every module', () => {
  let server: { url: string; close(): Promise<void> };
  let browser: Browser;
  let page: Page;
  let errors: string[];
  const reports = new Map<string, { devices: DeviceInfo[]; outcomes: CaseOutcome[] }>();

  beforeAll(async () => {
    server = await serveDirectory(`${PACKAGE_ROOT}/dist/www`);
    browser = await launchChromium();
    ({ page, errors } = await openPage(browser, `${server.url}battery.html`));
    for (const backend of BACKENDS) {
      const started = Date.now();
      reports.set(backend, await page.evaluate((b) => (globalThis as unknown as { mieBattery(b: string[]): Promise<never> }).mieBattery(b), [backend]));
      process.stderr.write(`Chromium battery on ${backend}: ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    }
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it.each(BACKENDS)('%s is active, as the page asked', (backend) => {
    const [device] = reports.get(backend)!.devices;
    expect(device.backend).toBe(backend);
    expect(device.kind).toBe(backend === 'wasm' ? 'cpu' : 'gpu');
    if (backend === 'wasm') expect(device).toMatchObject({ simd: true, matmul: 'simd' }); // MIE's SIMD GEMM, in a browser
    if (backend === 'webgl') expect(device.gpu?.webglVersion).toBe(2);
    if (backend === 'webgpu') expect(device.gpu?.vendor).toBeTruthy();
  });

  const cases = BACKENDS.flatMap((backend) => MODULE_CASES.map((c) => [backend, c.name] as const));
  it.each(cases)('%s: %s equals cpu', (backend, name) => {
    const outcome = reports.get(backend)!.outcomes.find((o) => o.name === name)!;
    expect(outcome.error).toBeNull();
    expect(outcome.results).toHaveLength(1);
    expect(outcome.results[0].backend).toBe(backend);
    expect(outcome.results[0].outputDifference).toBeLessThanOrEqual(GPU_TOLERANCE);
  });

  it('logged no error and threw nothing uncaught', () => {
    expect(errors).toEqual([]);
  });
});
