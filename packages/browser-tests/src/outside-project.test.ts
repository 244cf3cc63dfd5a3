/**
 * An outside project: the packed tarballs of the seven model packages installed with npm, a page
 * importing all of them bundled with esbuild for the browser, and the same checkpoint (loaded by
 * URL) giving Node's cpu logits, greedy and beam output and first training losses on wasm, webgl
 * and webgpu in headless Chromium and on webgpu in Node. See scripts/outside-project.mjs.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PACKAGE_ROOT, chromiumMissing, describeWhen } from './__tests__/environment';

jest.setTimeout(900_000);

interface Run {
  device: { backend: string; kind: string };
  packages: Record<string, string>;
  className: string;
  logits: number[];
  greedy: number[][];
  beams: number[][];
  losses: number[];
  bytesRoundTrip: number;
  insight: { names: string[]; pattern: number[]; ablatedLogits: number[] };
  syncBytesRoundTrip?: number;
  syncBytesError?: string | null;
  indexedDbRoundTrip?: number;
  leakedTensors: number;
  pageErrors?: string[];
}

interface Report {
  bundle: { errors: string[]; warnings: string[]; bytes: number; nodeBuiltins: string[]; mieModules: string[] };
  checkpoint: string[];
  runs: Record<string, Run>;
  skipped: Record<string, string>;
  seconds: Record<string, number>;
}

const RUNS = ['node-webgpu', 'chromium-wasm', 'chromium-webgl', 'chromium-webgpu'];
const maxDifference = (a: number[], b: number[]) => a.reduce((worst, value, i) => Math.max(worst, Math.abs(value - b[i])), 0);

describeWhen(chromiumMissing(), 'an outside project of the packed packages, in Chromium and on webgpu in Node', () => {
  let report: Report;

  beforeAll(async () => {
    const work = mkdtempSync(join(tmpdir(), 'mie-outside-report-'));
    try {
      const out = join(work, 'report.json');
      await promisify(execFile)(process.execPath, [join(PACKAGE_ROOT, 'scripts', 'outside-project.mjs'), out], { cwd: PACKAGE_ROOT, timeout: 840_000, maxBuffer: 64 * 1024 * 1024 });
      report = JSON.parse(readFileSync(out, 'utf8'));
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    process.stderr.write(`outside project: ${JSON.stringify(report.seconds)} (seconds)\n`);
  });

  it('bundles a page importing all seven packages for the browser with zero errors or warnings', () => {
    expect(report.bundle.errors).toEqual([]);
    expect(report.bundle.warnings).toEqual([]);
    expect(report.bundle.nodeBuiltins).toEqual([]);
    expect(report.bundle.mieModules).toEqual(['attention', 'core', 'embeddings', 'insight', 'layers', 'positional', 'training', 'transformer']);
  });

  it('ran everywhere it was asked to', () => {
    expect(report.skipped).toEqual({});
    expect(Object.keys(report.runs).sort()).toEqual(['node-cpu', ...RUNS].sort());
    expect(report.checkpoint).toEqual(['config.json', 'model.safetensors']);
    const reference = report.runs['node-cpu'];
    expect(reference.device.backend).toBe('cpu');
    expect(Object.values(reference.packages)).toEqual(Array(5).fill('function'));
    expect(reference.className).toBe('EncoderDecoderTransformer');
  });

  it.each(RUNS)('%s: the backend it names', (run) => {
    const backend = run.split('-')[1];
    expect(report.runs[run].device.backend).toBe(backend);
    expect(report.runs[run].device.kind).toBe(backend === 'wasm' ? 'cpu' : 'gpu');
  });

  it.each(RUNS)('%s: the logits of Node cpu to 2e-3, and the same greedy and beam outputs', (run) => {
    const reference = report.runs['node-cpu'];
    const { logits, greedy, beams } = report.runs[run];
    expect(logits).toHaveLength(reference.logits.length);
    expect(maxDifference(logits, reference.logits)).toBeLessThanOrEqual(2e-3);
    expect(greedy).toEqual(reference.greedy);
    expect(beams).toEqual(reference.beams);
  });

  it.each(RUNS)('%s: the hook points of Node cpu (@mie/insight), and an ablated head changes the logits', (run) => {
    const reference = report.runs['node-cpu'].insight;
    const { names, pattern, ablatedLogits } = report.runs[run].insight;
    expect(names).toEqual(['decoder.layers.0.crossAttn.hookPattern', 'decoder.layers.1.crossAttn.hookPattern']);
    expect(reference.names).toEqual(names);
    expect(maxDifference(pattern, reference.pattern)).toBeLessThanOrEqual(1e-3);
    expect(maxDifference(ablatedLogits, reference.ablatedLogits)).toBeLessThanOrEqual(2e-3);
    expect(maxDifference(ablatedLogits, report.runs[run].logits)).toBeGreaterThan(1e-3);
  });

  it.each(RUNS)('%s: the first training losses of Node cpu (AdamW, dropout)', (run) => {
    const reference = report.runs['node-cpu'].losses;
    const losses = report.runs[run].losses;
    expect(losses).toHaveLength(reference.length);
    losses.forEach((loss, i) => expect(Math.abs(loss - reference[i])).toBeLessThanOrEqual(1e-3 * reference[i]));
  });

  it.each(['node-cpu', ...RUNS])('%s: the trained model round-trips through bytes exactly, and leaks nothing', (run) => {
    const result = report.runs[run];
    expect(result.bytesRoundTrip).toBe(0);
    // webgpu in Node cannot read synchronously: toBuffers says so. In the browser it reads through an OffscreenCanvas.
    if (run === 'node-webgpu') expect(result.syncBytesError).toMatch(/MieBackendError: .*toBuffers.*toBuffersAsync/);
    else expect(result.syncBytesRoundTrip).toBe(0);
    expect(result.leakedTensors).toBe(0);
  });

  it.each(RUNS.filter((run) => run.startsWith('chromium')))('%s: saves to and loads from IndexedDB exactly, without page errors', (run) => {
    expect(report.runs[run].indexedDbRoundTrip).toBe(0);
    expect(report.runs[run].pageErrors).toEqual([]);
  });
});
