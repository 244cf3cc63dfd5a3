/**
 * Headless Chromium for the suite: Debian's `/usr/bin/chromium` (never a downloaded browser)
 * driven by playwright-core, with SwiftShader as its GPU (software Vulkan for WebGPU, software GL
 * through ANGLE for WebGL), and a static server for the pages and checkpoints. Node only.
 */
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser, type Page } from 'playwright-core';
import sirv from 'sirv';

/** The browser binary (`MIE_CHROMIUM` overrides the Debian path). */
export const CHROMIUM_PATH = process.env.MIE_CHROMIUM ?? '/usr/bin/chromium';

/**
 * The flags: no sandbox or background traffic, and SwiftShader for WebGPU and WebGL. SwiftShader
 * runs GPU work on the CPU, slowly: on a loaded machine a long kernel must not trip Chromium's GPU
 * watchdog, which is off.
 */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu-watchdog',
  '--disable-background-networking',
  '--disable-component-update',
  '--no-first-run',
  '--enable-unsafe-webgpu',
  '--use-webgpu-adapter=swiftshader',
  '--enable-features=Vulkan',
  '--use-angle=swiftshader',
  '--enable-unsafe-swiftshader',
];

/** The Vulkan driver Debian's chromium ships (SwiftShader), which Dawn in Node can use too. */
export const SWIFTSHADER_ICD = '/usr/lib/chromium/vk_swiftshader_icd.json';

/** Why the browser tests cannot run here, or null. */
export function chromiumMissing(): string | null {
  return existsSync(CHROMIUM_PATH) ? null : `no Chromium at ${CHROMIUM_PATH} (apt-get install chromium, or set MIE_CHROMIUM)`;
}

/** Environment for a Node child process whose Dawn should find SwiftShader. */
export function swiftShaderEnvironment(): NodeJS.ProcessEnv {
  const libraryPath = [process.env.LD_LIBRARY_PATH, '/usr/lib/chromium'].filter(Boolean).join(':');
  return { ...process.env, VK_ICD_FILENAMES: SWIFTSHADER_ICD, LD_LIBRARY_PATH: libraryPath };
}

/**
 * Serves `dir` on a free local port until `close()`; `isolated` adds the headers that make a page
 * cross-origin isolated (COOP `same-origin`, COEP `require-corp`), which `SharedArrayBuffer`, and
 * so any wasm threads, need.
 */
export async function serveDirectory(dir: string, { isolated = false }: { isolated?: boolean } = {}): Promise<{ url: string; close(): Promise<void> }> {
  const handler = sirv(dir, { dev: true, etag: false });
  const server: Server = createServer((request, response) => {
    if (isolated) {
      response.setHeader('Cross-Origin-Opener-Policy', 'same-origin');
      response.setHeader('Cross-Origin-Embedder-Policy', 'require-corp');
    }
    handler(request, response, () => {
      response.statusCode = 404;
      response.end('not found');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/`,
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
}

/**
 * Launches the browser, with SwiftShader's Vulkan driver where its GPU process looks for one.
 * Without it the compositor has no Vulkan (`vkCreateInstance() failed: -9`) and cannot share a
 * WebGPU canvas: tfjs-backend-webgpu's synchronous read, which goes through an OffscreenCanvas,
 * then returned zeros and lost the device ("A valid external Instance reference no longer exists"
 * on every later WebGPU call of the page).
 */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, headless: true, env: swiftShaderEnvironment() });
}

/**
 * Opens `url` in a fresh page, waits for `globalThis[readyFlag]`, and collects the console's
 * errors and the page's uncaught exceptions (thrown if any occurred).
 */
export async function openPage(browser: Browser, url: string, readyFlag = 'mieReady'): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(`uncaught: ${error.stack ?? error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(`console.error: ${message.text()}`);
  });
  await page.goto(url);
  await page.waitForFunction((flag) => (globalThis as Record<string, unknown>)[flag] === true || (globalThis as Record<string, unknown>).mieLoadError !== undefined, readyFlag, { timeout: 60_000 });
  if (errors.length) throw new Error(`${url} failed to load:\n${errors.join('\n')}`);
  return { page, errors };
}
