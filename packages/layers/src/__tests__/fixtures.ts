/**
 * Test helpers: load the PyTorch reference fixtures written by scripts/fixtures/layers.py and
 * compare a module's output and gradients with them.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setBackend, tf, type BackendChoice, type Module } from '@mie/core';

/** A tensor as stored in a fixture. */
export interface EncodedTensor {
  shape: number[];
  data: number[];
}

/** One reference case: options, PyTorch-layout state, input, output and gradients. */
export interface FixtureCase {
  name: string;
  options: Record<string, unknown>;
  state: Record<string, EncodedTensor>;
  input: EncodedTensor;
  output: EncodedTensor;
  lossWeights: EncodedTensor;
  /** `input` and every state name. */
  grads: Record<string, EncodedTensor>;
  probabilities?: EncodedTensor;
  predictions?: number[];
}

/** The backends every fixture test runs on. */
export const FIXTURE_BACKENDS: BackendChoice[] = ['cpu', 'wasm'];

/** Absolute and relative tolerance of every comparison with PyTorch. */
export const TOLERANCE = 1e-5;

/** The cases of `fixtures/<name>.json`. */
export function loadFixture(name: string): FixtureCase[] {
  const file = path.join(__dirname, '..', '..', 'fixtures', `${name}.json`);
  return (JSON.parse(fs.readFileSync(file, 'utf8')) as { cases: FixtureCase[] }).cases;
}

/** A float32 tensor from a fixture entry. */
export function toTensor(encoded: EncodedTensor): tf.Tensor {
  return tf.tensor(encoded.data, encoded.shape, 'float32');
}

/** Throws unless `actual` has the shape of `expected` and |a - e| <= tol * (1 + |e|) everywhere. */
export function expectClose(actual: tf.Tensor, expected: EncodedTensor, label: string, tolerance = TOLERANCE): void {
  if (!tf.util.arraysEqual(actual.shape, expected.shape)) {
    throw new Error(`${label}: shape [${actual.shape}] != expected [${expected.shape}]`);
  }
  const values = actual.dataSync();
  let worst = 0;
  let at = -1;
  expected.data.forEach((e, i) => {
    const excess = Math.abs(values[i] - e) - tolerance * (1 + Math.abs(e));
    if (!(excess <= worst)) {
      worst = Number.isNaN(excess) ? Infinity : excess;
      at = i;
    }
  });
  if (at >= 0) {
    throw new Error(`${label}: element ${at} is ${values[at]}, expected ${expected.data[at]} (tolerance ${tolerance})`);
  }
}

/**
 * Checks `call(x)` against a case: the output, and the gradients of sum(output * lossWeights)
 * with respect to the input and to every parameter of `module` (named as in the state dict).
 * Leaks no tensor.
 */
export function checkAgainstFixture(
  c: FixtureCase,
  call: (x: tf.Tensor) => tf.Tensor,
  module?: Module,
  options: { tolerance?: number } = {},
): void {
  const before = tf.memory().numTensors;
  const x = toTensor(c.input);
  const lossWeights = toTensor(c.lossWeights);
  const loss = (input: tf.Tensor) => tf.sum(tf.mul(call(input), lossWeights)) as tf.Scalar;
  try {
    tf.tidy(() => {
      expectClose(call(x), c.output, `${c.name}: output`, options.tolerance);
      expectClose(tf.grad(loss)(x), c.grads.input, `${c.name}: gradient w.r.t. the input`, options.tolerance);
      const named = module?.namedParameters() ?? [];
      expect(Object.keys(c.grads).filter((k) => k !== 'input').sort()).toEqual(named.map(([k]) => k).sort());
      if (named.length > 0) {
        const { value, grads } = tf.variableGrads(() => loss(x), named.map(([, v]) => v));
        value.dispose();
        for (const [key, variable] of named) {
          expectClose(grads[variable.name], c.grads[key], `${c.name}: gradient w.r.t. ${key}`, options.tolerance);
        }
      }
    });
  } finally {
    tf.dispose([x, lossWeights]);
  }
  expect(tf.memory().numTensors).toBe(before);
}

/** Loads a case's state dict (PyTorch layout) into `module` with `loadStateDict`, strictly. */
export function loadCaseState(module: Module, c: FixtureCase): void {
  const state = Object.fromEntries(Object.entries(c.state).map(([k, v]) => [k, toTensor(v)]));
  try {
    module.loadStateDict(state);
  } finally {
    tf.dispose(Object.values(state));
  }
}

/**
 * Parameters of a stack of linear layers through `widths` (input, hidden..., output), with a layer
 * norm on every hidden layer when `layerNorm`: FeedForwardNN's and MultiLayerPerceptron's count.
 */
export function stackParameterCount(widths: number[], layerNorm: boolean): number {
  let total = 0;
  for (let i = 0; i + 1 < widths.length; i++) {
    const hidden = i + 2 < widths.length;
    total += widths[i] * widths[i + 1] + widths[i + 1] + (hidden && layerNorm ? 2 * widths[i + 1] : 0);
  }
  return total;
}

/**
 * The PyTorch parity suite of one module class: on each fixture backend, every case builds the
 * module from the case's options, loads the case's PyTorch weights, switches to eval mode and
 * checks outputs and gradients against the fixture.
 */
export function describeFixtureParity(
  title: string,
  cases: FixtureCase[],
  build: (options: Record<string, unknown>) => Module & { forward(x: tf.Tensor): tf.Tensor },
): void {
  describe.each(FIXTURE_BACKENDS)(`${title} on %s`, (backend) => {
    beforeAll(async () => {
      await setBackend(backend);
    });

    it.each(cases.map((c) => [c.name, c] as const))('%s', (_name, c) => {
      expect(tf.getBackend()).toBe(backend);
      const module = build(c.options as Record<string, unknown>);
      try {
        loadCaseState(module, c);
        module.eval();
        checkAgainstFixture(c, (x) => module.forward(x), module);
      } finally {
        module.dispose();
      }
    });
  });
}
