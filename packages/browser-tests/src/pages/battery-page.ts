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
import { getDevice, setBackend, type BackendChoice, type DeviceInfo } from '@mie/core';
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

Object.assign(globalThis, { mieBattery, mieReady: true });
