import * as fs from 'node:fs';
import * as path from 'node:path';
import { setBackend } from './backend';
import { dropout } from './dropout';
import { MieConfigError } from './errors';
import { INIT_TYPES, checkInitType, computeFans, initialize, type InitType } from './init';
import { clearSeed, setSeed } from './random';
import { tf } from './tfjs';

interface Case {
  init: InitType;
  shape: number[];
  fanIn: number;
  fanOut: number;
  std: number;
  mean: number;
  maxAbs: number;
}
// Produced by scripts/fixtures/core_init.py with PyTorch.
const fixture: { cases: Case[] } = JSON.parse(fs.readFileSync(path.join(__dirname, '../fixtures/init.json'), 'utf8'));

beforeAll(async () => {
  await setBackend('wasm');
});
afterEach(() => clearSeed());

describe('initialisers match torch.nn.init', () => {
  it.each(fixture.cases.map((c) => [`${c.init} ${c.shape.join('x')}`, c] as const))('%s', (_label, c) => {
    expect(computeFans(c.shape)).toEqual({ fanIn: c.fanIn, fanOut: c.fanOut });
    setSeed(11);
    const draws = tf.tidy(() => tf.stack(Array.from({ length: 8 }, () => initialize(c.init, c.shape))));
    const { mean, variance } = tf.moments(draws);
    const std = Math.sqrt(variance.dataSync()[0]);
    const maxAbs = tf.max(tf.abs(draws)).dataSync()[0];
    // Sampling error of the std over >= 32k draws is well under 2%.
    expect(Math.abs(std / c.std - 1)).toBeLessThan(0.02);
    expect(Math.abs(mean.dataSync()[0])).toBeLessThan(c.std * 0.02);
    if (c.init.endsWith('uniform')) {
      // Uniform draws: the max is within a hair of the bound, and never beyond it.
      expect(maxAbs).toBeLessThanOrEqual(c.maxAbs * 1.001);
      expect(maxAbs).toBeGreaterThan(c.maxAbs * 0.99);
    }
    tf.dispose([draws, mean, variance]);
  });

  it('rejects tensors with fewer than two dimensions and unknown names', () => {
    expect(() => computeFans([5])).toThrow(MieConfigError);
    expect(() => checkInitType('LinearLayer', 'he_uniform')).toThrow(
      `LinearLayer: option "initType" must be one of ${INIT_TYPES.join(', ')}. Received: "he_uniform".`,
    );
    expect(checkInitType('LinearLayer', 'xavier_normal')).toBe('xavier_normal');
  });
});

describe('setSeed', () => {
  it('makes initialisation and dropout reproducible, and different seeds differ', () => {
    const draw = (seed: number) => {
      setSeed(seed);
      return tf.tidy(() => {
        const w = initialize('kaiming_normal', [4, 4]);
        const d = dropout(tf.ones([64]), 0.5, true);
        return [Array.from(w.dataSync()), Array.from(d.dataSync())];
      });
    };
    expect(draw(3)).toEqual(draw(3));
    expect(draw(3)[0]).not.toEqual(draw(4)[0]);
    expect(draw(3)[1]).not.toEqual(draw(4)[1]);
  });

  it('dropout scales kept values by 1/(1-rate) and is the identity in eval mode', () => {
    setSeed(1);
    const x = tf.ones([4000]);
    const y = dropout(x, 0.25, true);
    const values = Array.from(y.dataSync());
    expect(values.every((v) => v === 0 || Math.abs(v - 4 / 3) < 1e-6)).toBe(true);
    const kept = values.filter((v) => v !== 0).length / values.length;
    expect(Math.abs(kept - 0.75)).toBeLessThan(0.03);
    expect(dropout(x, 0.25, false)).toBe(x);
    tf.dispose([x, y]);
  });

  it('dropout passes the gradient through the same mask, and leaks nothing', () => {
    const x = tf.reshape(tf.range(1, 2001), [40, 50]);
    const before = tf.memory().numTensors;
    setSeed(5);
    const y = dropout(x, 0.3, true);
    setSeed(5);
    const dx = tf.grad((input: tf.Tensor) => tf.sum(tf.mul(dropout(input, 0.3, true), 2)))(x);
    // d/dx sum(2 * mask * x) = 2 * mask: 2 / 0.7 where y kept x, 0 where it dropped it.
    const kept = Array.from(y.dataSync(), (v) => v !== 0);
    expect(Array.from(dx.dataSync())).toEqual(kept.map((k) => (k ? Math.fround(2 * Math.fround(1 / 0.7)) : 0)));
    expect(kept.filter((k) => !k).length).toBeGreaterThan(400);
    tf.dispose([y, dx]);
    expect(tf.memory().numTensors).toBe(before);
    x.dispose();
  });
});
