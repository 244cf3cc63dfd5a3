/**
 * webgpu in Node through Dawn (the `webgpu` package) on SwiftShader: the module battery's backend
 * agreement for every module, and what MIE does with tensors that only the GPU holds.
 */
import type { DeviceInfo } from '@mie/core';
import { MODULE_CASES } from './module-cases';
import { GPU_TOLERANCE, type CaseOutcome } from './run-battery';
import { describeWhen, runChild, webgpuInNodeMissing } from './__tests__/environment';

jest.setTimeout(600_000);

type Outcome = { ok: true; value?: unknown } | { ok: false; name: string; message: string };

describeWhen(webgpuInNodeMissing(), 'webgpu in Node: backend agreement of every module', () => {
  let report: { device: DeviceInfo; outcomes: CaseOutcome[]; log: string };

  beforeAll(async () => {
    report = await runChild('node-battery.js', ['webgpu'], { gpu: true });
  });

  it('runs on a WebGPU adapter found by Dawn', () => {
    expect(report.device).toMatchObject({ backend: 'webgpu', kind: 'gpu', requested: 'webgpu', package: '@tensorflow/tfjs-backend-webgpu' });
    expect(report.device.gpu?.vendor).toBeTruthy();
    expect(report.outcomes.map((o) => o.name)).toEqual(MODULE_CASES.map((c) => c.name));
  });

  it.each(MODULE_CASES.map((c) => c.name))('%s: outputs and gradients equal cpu', (name) => {
    const outcome = report.outcomes.find((o) => o.name === name)!;
    expect(outcome.error).toBeNull();
    expect(outcome.results).toHaveLength(1);
    const [result] = outcome.results;
    expect(result.backend).toBe('webgpu');
    expect(result.outputs).toBeGreaterThan(0);
    expect(result.outputDifference).toBeLessThanOrEqual(GPU_TOLERANCE * 10);
  });

  it('gave Dawn no invalid shader or pipeline', () => {
    expect(report.log).not.toMatch(/Invalid|error while parsing WGSL/i);
  });
});

describeWhen(webgpuInNodeMissing(), 'webgpu in Node: tensors only the GPU holds', () => {
  let r: Record<string, unknown> & { log: string };

  beforeAll(async () => {
    r = await runChild('node-gpu-paths.js', [], { gpu: true });
  });

  it('has no synchronous reads there', () => {
    expect(r.synchronousReads).toBe(false);
    expect(r.hostIdsOnHost).toBe(true);
    expect(r.gpuIdsOnHost).toBe(false);
  });

  it('TokenEmbedding: ids from JavaScript are range-checked; GPU-only ids give NaN rows where out of range', () => {
    expect(r.hostIdsOutOfRange).toMatchObject({ ok: false, name: 'MieShapeError', message: expect.stringContaining('Received: 9 at position [0, 1]') });
    const rows = r.gpuIdRows as Array<Array<number | null>>; // JSON turns NaN into null
    expect(rows.slice(0, 2).flat()).toEqual(r.gpuIdExpected);
    expect(rows.slice(2).flat()).toEqual(Array(8).fill(null));
  });

  it('crossEntropyLoss: host targets are checked; a GPU-only target out of range has a NaN loss', () => {
    expect(r.hostTargetsOutOfRange).toMatchObject({ ok: false, name: 'MieShapeError', message: expect.stringContaining('Received: 3 at flat position 1') });
    const [first, second] = r.gpuTargetLosses as Array<number | null>;
    expect(first).toBeCloseTo(0.40760596, 5);
    expect(second).toBeNull();
    const [gpu, host] = r.inRangeLosses as number[];
    expect(gpu).toBe(host);
  });

  it('synchronous calls that must read refuse with a MieBackendError naming the asynchronous one', () => {
    expect(r.toBuffers).toMatchObject({ ok: false, name: 'MieBackendError', message: expect.stringContaining('toBuffersAsync') });
    expect(r.toBuffersAsync).toEqual({ ok: true, value: expect.any(Number) });
    expect(r.clipGradNorm).toMatchObject({ ok: false, name: 'MieBackendError', message: expect.stringContaining('clipGradNormAsync') });
    expect(r.gpuAdditiveMask).toMatchObject({ ok: false, name: 'MieBackendError' });
    expect(r.finiteChecks).toMatchObject({ ok: false, name: 'MieBackendError', message: expect.stringContaining('enableFiniteChecks') });
  });

  it('the asynchronous ones work: clipGradNormAsync, and fromAdditiveMask on a host mask', () => {
    const clipped = r.clipGradNormAsync as { totalNorm: number; a: number[] };
    expect(clipped.totalNorm).toBe(13); // sqrt(3^2 + 4^2 + 12^2)
    expect(clipped.a[0]).toBeCloseTo(3 / 13, 6);
    expect(clipped.a[1]).toBeCloseTo(4 / 13, 6);
    expect((r.hostAdditiveMask as Outcome & { value: number[] }).value).toEqual([1, 0]);
  });

  it('leaks no tensor', () => {
    expect(r.leakedTensors).toBe(0);
  });
});
