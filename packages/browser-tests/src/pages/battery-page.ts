/**
 * The Chromium page of the agreement battery: a page imports the GPU backend packages it wants
 * (MIE's `setBackend` then finds them), and exposes `mieBattery(backends)` to the test driver.
 */
// A page registers the backends it wants by importing their packages, as users' pages do; these
// side-effect imports are the one way to do it, not a second tfjs instance.
// eslint-disable-next-line no-restricted-imports
import '@tensorflow/tfjs-backend-webgl';
// eslint-disable-next-line no-restricted-imports
import '@tensorflow/tfjs-backend-webgpu';
import { getDevice, setBackend, tf, type BackendChoice, type DeviceInfo } from '@mie/core';
import { runBattery, type CaseOutcome } from '../run-battery';

async function mieBattery(backends: BackendChoice[], only?: string): Promise<{ devices: DeviceInfo[]; outcomes: CaseOutcome[] }> {
  const devices: DeviceInfo[] = [];
  for (const backend of backends) {
    await setBackend(backend);
    devices.push(getDevice());
  }
  await setBackend('cpu');
  return { devices, outcomes: await runBattery(backends, undefined, only) };
}

/**
 * Products large enough for the SIMD GEMM to split over its threads (plain, both transposes,
 * batched) on `backend`, against the cpu backend: the largest difference, and the device.
 */
async function mieMatmulCheck(backend: BackendChoice): Promise<{ device: DeviceInfo; crossOriginIsolated: boolean; difference: number }> {
  const cases: Array<[number[], number[], boolean, boolean]> = [
    [[160, 200], [200, 96], false, false],
    [[200, 160], [96, 200], true, true],
    [[8, 64, 96], [8, 96, 80], false, false],
  ];
  const values = (shape: number[]) => Float32Array.from({ length: shape.reduce((x, y) => x * y, 1) }, (_, i) => Math.sin(i * 0.37));
  const run = async (choice: BackendChoice) => {
    await setBackend(choice);
    const outputs: Float32Array[] = [];
    for (const [aShape, bShape, tA, tB] of cases) {
      const out = tf.tidy(() => tf.matMul(tf.tensor(values(aShape), aShape), tf.tensor(values(bShape), bShape), tA, tB));
      outputs.push((await out.data()) as Float32Array);
      out.dispose();
    }
    return outputs;
  };
  const expected = await run('cpu');
  const actual = await run(backend);
  const device = getDevice();
  let difference = 0;
  expected.forEach((e, c) => e.forEach((v, i) => (difference = Math.max(difference, Math.abs(actual[c][i] - v) / (1 + Math.abs(v))))));
  await setBackend('cpu');
  return { device, crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true, difference };
}

Object.assign(globalThis, { mieBattery, mieMatmulCheck, mieReady: true });
