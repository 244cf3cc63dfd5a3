/**
 * Test helpers: the PyTorch reference fixtures written by scripts/fixtures/positional.py, and
 * small tensor comparisons. Not part of the published package.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Module, parameter, tf } from '@mie/core';

/** A tensor as stored in the fixtures: shape and flat row-major values. */
export interface FixtureTensor {
  shape: number[];
  values: number[];
}

/** Reads `packages/positional/fixtures/<name>`. */
export function loadFixture<T>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(__dirname, '../../fixtures', name), 'utf8')) as T;
}

/** A float32 tensor from a fixture entry. */
export function fromFixture(t: FixtureTensor): tf.Tensor {
  return tf.tensor(t.values, t.shape, 'float32');
}

/** Largest |actual - expected| after checking that the shapes agree. */
export function maxAbsDifference(actual: tf.Tensor, expected: FixtureTensor | tf.Tensor): number {
  const shape = expected instanceof tf.Tensor ? expected.shape : expected.shape;
  expect(actual.shape).toEqual(shape);
  const a = actual.dataSync();
  const b = expected instanceof tf.Tensor ? expected.dataSync() : expected.values;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]));
  return worst;
}

/**
 * Wraps a module without parameters behind a trainable scalar `scale` (1) that multiplies its first
 * input. The battery skips gradient checks for parameter-free modules; through the wrapper it
 * checks that gradients flow through the wrapped module and agree on cpu and wasm.
 */
export function withInputScale<O extends object, M extends Module & { readonly config: O }>(
  Inner: new (options: O) => M,
): new (options: O) => Module & { readonly config: O; inner: M } {
  return class InputScaled extends Module {
    readonly config: O;
    scale = parameter(() => tf.ones([1]));
    inner: M;

    constructor(options: O) {
      super();
      this.inner = new Inner(options);
      this.config = this.inner.config;
    }

    forward(x: tf.Tensor, ...rest: unknown[]): unknown {
      return tf.tidy(() => (this.inner.forward as (...args: unknown[]) => tf.TensorContainer)(tf.mul(x, this.scale), ...rest));
    }
  };
}
