/**
 * Training on webgpu in Node: the Trainer (AdamW without the fused cpu/wasm kernel, dropout,
 * gradient clipping) takes 300 steps on a small encoder-decoder and reaches the loss the same run
 * reaches on cpu.
 */
import type { DeviceInfo } from '@mie/core';
import { describeWhen, runChild, webgpuInNodeMissing } from './__tests__/environment';

jest.setTimeout(900_000);

interface Run {
  device: DeviceInfo;
  seconds: number;
  losses: number[];
  gradNorms: number[];
  generated: number[][];
  expected: number[][];
  leaked: number;
}

const STEPS = 300;
const mean = (values: number[]) => values.reduce((total, value) => total + value, 0) / values.length;

describeWhen(webgpuInNodeMissing(), `webgpu in Node: ${STEPS} training steps reach the cpu loss`, () => {
  let cpu: Run;
  let gpu: Run;

  beforeAll(async () => {
    cpu = await runChild<Run>('train-compare.js', ['cpu', String(STEPS)]);
    gpu = await runChild<Run>('train-compare.js', ['webgpu', String(STEPS)], { gpu: true });
    process.stderr.write(`training ${STEPS} steps: cpu ${cpu.seconds.toFixed(1)} s, webgpu on SwiftShader ${gpu.seconds.toFixed(1)} s (software: not a GPU timing)\n`);
  });

  it('trained on webgpu, every step', () => {
    expect(gpu.device).toMatchObject({ backend: 'webgpu', kind: 'gpu' });
    expect(gpu.losses).toHaveLength(STEPS);
    expect(gpu.losses.every(Number.isFinite)).toBe(true);
    expect(gpu.gradNorms.every(Number.isFinite)).toBe(true);
  });

  it('learnt: the loss of the last 20 steps is under half the first', () => {
    expect(mean(cpu.losses.slice(-20))).toBeLessThan(cpu.losses[0] / 2);
    expect(mean(gpu.losses.slice(-20))).toBeLessThan(gpu.losses[0] / 2);
  });

  it('follows the cpu run: the first 10 losses to 1e-4, the last 20 within 2%', () => {
    for (let i = 0; i < 10; i++) expect(Math.abs(gpu.losses[i] - cpu.losses[i])).toBeLessThanOrEqual(1e-4 * cpu.losses[i]);
    const [a, b] = [mean(gpu.losses.slice(-20)), mean(cpu.losses.slice(-20))];
    expect(Math.abs(a - b)).toBeLessThanOrEqual(0.02 * b);
  });

  it('leaves no tensor behind but the optimizer moments (disposed)', () => {
    expect(gpu.leaked).toBe(0);
    expect(cpu.leaked).toBe(0);
  });
});
