/** Small helpers shared by the reliability tests. */
import * as path from 'node:path';
import { tf, type BackendChoice } from '@mie/core';

/** The backend this run of the suite tests: wasm or cpu (one Jest project each, see jest.config.js). */
export function testBackend(): Extract<BackendChoice, 'wasm' | 'cpu'> {
  const backend = process.env.MIE_RELIABILITY_BACKEND ?? 'cpu';
  if (backend !== 'wasm' && backend !== 'cpu') throw new Error(`MIE_RELIABILITY_BACKEND must be wasm or cpu, got ${backend}`);
  return backend;
}

/** Checks that the backend still computes after an error: 2 + 3 = 5, and a small matmul. */
export function expectBackendHealthy(): void {
  const sum = tf.tidy(() => tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]);
  if (sum !== 5) throw new Error(`the ${tf.getBackend()} backend computed 2 + 3 = ${sum} after an error`);
  const product = tf.tidy(() => Array.from(tf.matMul(tf.tensor2d([[1, 2], [3, 4]]), tf.tensor2d([[5], [6]])).dataSync()));
  if (product.join(',') !== '17,39') throw new Error(`the ${tf.getBackend()} backend computed [[1,2],[3,4]] x [5,6] = [${product}] after an error`);
}

/** The repository root (docs/ lives there). */
export const REPO_ROOT = path.resolve(__dirname, '../../..');

/** Frees every tensor in a forward result: a tensor, an array of tensors, or an object of them. */
export function disposeResult(value: unknown): void {
  if (value instanceof tf.Tensor) value.dispose();
  else if (Array.isArray(value)) value.forEach(disposeResult);
  else if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) Object.values(value).forEach(disposeResult);
}

/** Every tensor in a list of forward arguments (one level into arrays and option objects). */
export function tensorsIn(values: unknown[]): tf.Tensor[] {
  const out: tf.Tensor[] = [];
  const visit = (v: unknown, depth: number): void => {
    if (v instanceof tf.Tensor) out.push(v);
    else if (depth < 2 && Array.isArray(v)) v.forEach((x) => visit(x, depth + 1));
    else if (depth < 2 && v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) Object.values(v).forEach((x) => visit(x, depth + 1));
  };
  values.forEach((v) => visit(v, 0));
  return out;
}

/** Runs `fn` and returns what it threw (or fails when it did not throw). */
export function thrown(fn: () => unknown): Error {
  let result: unknown;
  try {
    result = fn();
  } catch (error) {
    return error as Error;
  }
  disposeResult(result);
  throw new Error('expected an error, but the call returned');
}

/** Same for async functions. */
export async function rejected(fn: () => Promise<unknown>): Promise<Error> {
  try {
    await fn();
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection, but the call resolved');
}
