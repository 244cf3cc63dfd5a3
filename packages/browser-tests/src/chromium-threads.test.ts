/**
 * Headless Chromium, cross-origin isolated: tfjs-backend-wasm loads its threaded build, whose heap
 * is shared, and MIE's SIMD GEMM splits products over its browser workers in place (relaxed SIMD
 * where Chromium validates it); the module battery still agrees with cpu. A page that is not
 * isolated stays on one thread.
 */
import type { Browser } from 'playwright-core';
import type { DeviceInfo } from '@mie/core';
import { launchChromium, openPage, serveDirectory } from './chromium';
import { MODULE_CASES } from './module-cases';
import { GPU_TOLERANCE, type CaseOutcome } from './run-battery';
import { PACKAGE_ROOT, chromiumMissing, describeWhen } from './__tests__/environment';

jest.setTimeout(600_000);

type MatmulCheck = { device: DeviceInfo; crossOriginIsolated: boolean; difference: number };

async function check(browser: Browser, isolated: boolean): Promise<{ matmul: MatmulCheck; battery?: { devices: DeviceInfo[]; outcomes: CaseOutcome[] }; errors: string[] }> {
  const server = await serveDirectory(`${PACKAGE_ROOT}/dist/www`, { isolated });
  try {
    const { page, errors } = await openPage(browser, `${server.url}battery.html`);
    const matmul = await page.evaluate(() => (globalThis as unknown as { mieMatmulCheck(b: string): Promise<MatmulCheck> }).mieMatmulCheck('wasm'));
    const battery = isolated ? await page.evaluate(() => (globalThis as unknown as { mieBattery(b: string[]): Promise<never> }).mieBattery(['wasm'])) : undefined;
    await page.close();
    return { matmul, battery, errors };
  } finally {
    await server.close();
  }
}

describeWhen(chromiumMissing(), 'headless Chromium: the SIMD GEMM on threads', () => {
  let browser: Browser;
  let isolated: Awaited<ReturnType<typeof check>>;
  let plain: Awaited<ReturnType<typeof check>>;

  beforeAll(async () => {
    browser = await launchChromium();
    isolated = await check(browser, true);
    plain = await check(browser, false);
  });

  afterAll(async () => {
    await browser?.close();
  });

  it('a cross-origin-isolated page splits products over the pool, exactly as cpu computes them', () => {
    const { device, crossOriginIsolated, difference } = isolated.matmul;
    expect(crossOriginIsolated).toBe(true);
    expect(device).toMatchObject({ backend: 'wasm', matmul: 'simd', gemmKernel: 'relaxed-simd' });
    expect(device.threads).toBeGreaterThanOrEqual(2);
    expect(difference).toBeLessThan(1e-5);
  });

  it.each(MODULE_CASES.map((c) => c.name))('isolated wasm: %s equals cpu', (name) => {
    const outcome = isolated.battery!.outcomes.find((o) => o.name === name)!;
    expect(outcome.error).toBeNull();
    expect(outcome.results[0].outputDifference).toBeLessThanOrEqual(GPU_TOLERANCE);
  });

  it('a page that is not isolated computes on one thread', () => {
    expect(plain.matmul.crossOriginIsolated).toBe(false);
    expect(plain.matmul.device).toMatchObject({ backend: 'wasm', matmul: 'simd', threads: 1 });
    expect(plain.matmul.difference).toBeLessThan(1e-5);
  });

  it('logged no error and threw nothing uncaught', () => {
    expect([...isolated.errors, ...plain.errors]).toEqual([]);
  });
});
