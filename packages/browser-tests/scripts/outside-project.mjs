#!/usr/bin/env node
// The outside project: packs the seven model packages, installs the tarballs with npm into an
// empty project (with the GPU backend packages a page would add), bundles outside/page.mjs for the
// browser with esbuild (no shims, plugins or defines), serves the bundle, the .wasm files and a
// checkpoint, and runs outside/checks.mjs on Node's cpu backend (the reference), on webgpu in Node
// (Dawn on SwiftShader) and in headless Chromium on wasm, webgl and webgpu.
//
//   node scripts/outside-project.mjs <report.json>     (after `pnpm build`)
//
// Writes { bundle, runs: { 'node-cpu', 'node-webgpu', 'chromium-wasm', ... }, skipped, seconds }.
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { installProject, packModelPackages, packPackage } from '../../../scripts/model-packages.mjs';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const require = createRequire(import.meta.url);
const { chromiumMissing, launchChromium, openPage, serveDirectory, swiftShaderEnvironment, SWIFTSHADER_ICD } = require(join(here, 'dist', 'chromium.js'));
const version = (name) => JSON.parse(readFileSync(require.resolve(`${name}/package.json`), 'utf8')).version;

const reportPath = process.argv[2];
if (!reportPath) throw new Error('usage: node scripts/outside-project.mjs <report.json>');
const started = performance.now();
const seconds = {};
const timed = async (label, work) => {
  const t = performance.now();
  try {
    return await work();
  } finally {
    seconds[label] = Number(((performance.now() - t) / 1000).toFixed(1));
  }
};

const work = mkdtempSync(join(tmpdir(), 'mie-outside-'));
const project = join(work, 'project');
const www = join(project, 'www');
const report = { bundle: null, runs: {}, skipped: {}, seconds };
try {
  await timed('pack and install', () => {
    const tarballs = [...packModelPackages(work), packPackage(work, 'insight')];
    const extras = ['@tensorflow/tfjs-backend-webgl', '@tensorflow/tfjs-backend-webgpu', 'webgpu'].map((name) => `${name}@${version(name)}`);
    installProject(project, [...tarballs, ...extras], { type: 'module' });
  });
  for (const file of readdirSync(join(here, 'outside'))) copyFileSync(join(here, 'outside', file), join(project, file));
  mkdirSync(www, { recursive: true });
  execFileSync(process.execPath, ['make-model.mjs', join(www, 'model')], { cwd: project, stdio: 'pipe' });
  report.checkpoint = readdirSync(join(www, 'model')).sort();

  report.bundle = await timed('bundle', async () => {
    const result = await build({
      absWorkingDir: project,
      entryPoints: ['page.mjs'],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      outfile: join(www, 'page.js'),
      logLevel: 'silent',
      metafile: true,
    }).catch((failure) => ({ errors: failure.errors ?? [String(failure)], warnings: failure.warnings ?? [], metafile: null }));
    const inputs = result.metafile ? Object.keys(result.metafile.inputs) : [];
    return {
      errors: result.errors.map((message) => message.text ?? String(message)),
      warnings: result.warnings.map((message) => message.text ?? String(message)),
      bytes: result.metafile ? Object.values(result.metafile.outputs).reduce((total, output) => total + output.bytes, 0) : 0,
      nodeBuiltins: inputs.filter((input) => input.startsWith('node:') || /^(fs|path|os|crypto|child_process|worker_threads)$/.test(input)),
      mieModules: [...new Set(inputs.map((input) => input.match(/node_modules\/@mie\/([a-z-]+)\//)?.[1]).filter(Boolean))].sort(),
    };
  });
  writeFileSync(join(www, 'index.html'), '<!doctype html>\n<meta charset="utf-8">\n<link rel="icon" href="data:,">\n<script type="module" src="./page.js"></script>\n');
  // The wasm backend loads its .wasm files from the page's folder by default.
  const wasmDist = join(project, 'node_modules', '@tensorflow', 'tfjs-backend-wasm', 'dist');
  for (const file of readdirSync(wasmDist).filter((name) => name.endsWith('.wasm'))) copyFileSync(join(wasmDist, file), join(www, file));

  const server = await serveDirectory(www);
  try {
    const modelUrl = `${server.url}model/`;
    // Asynchronous: this process serves the checkpoint the child fetches.
    const nodeRun = async (backend, env) => {
      const out = join(work, `node-${backend}.json`);
      await promisify(execFile)(process.execPath, ['node.mjs', backend, modelUrl, out], { cwd: project, env, timeout: 300_000 });
      return JSON.parse(readFileSync(out, 'utf8'));
    };
    report.runs['node-cpu'] = await timed('node-cpu', () => nodeRun('cpu', process.env));
    if (existsSync(SWIFTSHADER_ICD)) report.runs['node-webgpu'] = await timed('node-webgpu', () => nodeRun('webgpu', swiftShaderEnvironment()));
    else report.skipped['node-webgpu'] = `no SwiftShader Vulkan driver at ${SWIFTSHADER_ICD} (apt-get install chromium)`;

    const missing = chromiumMissing();
    if (missing) {
      for (const backend of ['wasm', 'webgl', 'webgpu']) report.skipped[`chromium-${backend}`] = missing;
    } else {
      const browser = await launchChromium();
      try {
        for (const backend of ['wasm', 'webgl', 'webgpu']) {
          report.runs[`chromium-${backend}`] = await timed(`chromium-${backend}`, async () => {
            const { page, errors } = await openPage(browser, server.url);
            const result = await page.evaluate(([b, url]) => globalThis.mieRun(b, url), [backend, 'model/']);
            await page.close();
            return { ...result, pageErrors: errors };
          });
        }
      } finally {
        await browser.close();
      }
    }
  } finally {
    await server.close();
  }
} finally {
  seconds.total = Number(((performance.now() - started) / 1000).toFixed(1));
  writeFileSync(reportPath, JSON.stringify(report, null, 1));
  rmSync(work, { recursive: true, force: true });
}
