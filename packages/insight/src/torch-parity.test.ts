/**
 * Every hook point of the pretrained G2P model against PyTorch: the activations
 * scripts/fixtures/insight.py recomputed in float64 from the same weights (and checked against
 * nn.TransformerEncoderLayer / nn.TransformerDecoderLayer), for "insight" and its greedy
 * pronunciation. Also: zero-ablating a head at `hookZ` is zeroing its columns of `outProj.weight`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors, setBackend, tf, type BackendChoice } from '@mie/core';
import { loadG2P, type G2PModel } from '@mie/g2p-en';
import { runWithCache, runWithHooks, zeroHeads } from './index';

const FIXTURE_FILE = path.join(__dirname, '../fixtures/g2p-hooks.safetensors');
const TOLERANCE = 1e-5;
/**
 * What a backend may differ by on a tensor whose largest |value| is `peak`: 1e-5 on cpu; wasm
 * (XNNPACK's own summation order) also 1e-6 of the peak, a few float32 ulps of the largest
 * activations (the last decoder layer's residual stream reaches 32, where an ulp is 4e-6).
 */
const allowance = (backend: BackendChoice, peak: number): number => (backend === 'cpu' ? TOLERANCE : TOLERANCE + 1e-6 * peak);
/** Scores below this are blocked entries (-1e30 in both): only allowed ones are compared. */
const BLOCKED_BELOW = -1e29;
const ABLATED_MODULE = 'transformer.decoder.layers.1.crossAttn';

/** The fixture's hook point names, in the order PyTorch computed them (from the header alone). */
function fixtureHookNames(): string[] {
  const bytes = fs.readFileSync(FIXTURE_FILE);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const header = JSON.parse(bytes.toString('utf8', 8, 8 + headerLength)) as { __metadata__: Record<string, string> };
  return JSON.parse(header.__metadata__['hookNames']) as string[];
}

/** Max |actual - expected|, over the entries where `expected` is not blocked when `allowedOnly`. */
function maxAbsDifference(actual: tf.Tensor, expected: tf.Tensor, allowedOnly = false): number {
  expect(actual.shape).toEqual(expected.shape);
  const a = actual.dataSync();
  const e = expected.dataSync();
  let max = 0;
  for (let i = 0; i < e.length; i++) {
    if (allowedOnly && e[i] < BLOCKED_BELOW) {
      expect(a[i]).toBeLessThan(BLOCKED_BELOW); // blocked in PyTorch: blocked in MIE too
      continue;
    }
    max = Math.max(max, Math.abs(a[i] - e[i]));
  }
  return max;
}

/** The largest |value| of the entries that are not blocked. */
function peakOf(t: tf.Tensor): number {
  let peak = 0;
  for (const value of t.dataSync()) if (value >= BLOCKED_BELOW) peak = Math.max(peak, Math.abs(value));
  return peak;
}

const hookNames = fixtureHookNames();
/** `hookQ`, `hookResidPost`, ...: the last segment of a name. */
const pointOf = (name: string): string => name.slice(name.lastIndexOf('.') + 1);

// Measured maxima |MIE - PyTorch| (float32 against float64) over all layers, cpu / wasm:
// hookResidPre 1.4e-6 / 4.5e-6, hookResidMid 1.9e-6 / 4.9e-6, hookResidMidCross 2.2e-6 / 6.1e-6,
// hookResidPost 3.8e-6 / 1.1e-5 (decoder.layers.2, whose residual stream reaches 32.4),
// hookPre and hookPost 1.6e-6 / 4.8e-6, hookQ 1.0e-6 / 3.5e-6, hookK 1.0e-6 / 2.9e-6,
// hookV 7.8e-7 / 2.3e-6, hookScores (allowed entries) 2.9e-6 / 7.9e-6, hookPattern 4.8e-7 / 1.1e-6,
// hookZ 1.7e-6 / 5.0e-6, logits 9.5e-7 / 3.3e-6. The ablation identity holds exactly (0) on both.
describe.each<BackendChoice>(['cpu', 'wasm'])('the G2P model\'s hook points against PyTorch on %s', (backend) => {
  let model: G2PModel;
  let fixture: Record<string, tf.Tensor>;

  beforeAll(async () => {
    await setBackend(backend);
    model = await loadG2P(); // eval mode
    fixture = readSafetensors(new Uint8Array(fs.readFileSync(FIXTURE_FILE))).tensors;
  });

  afterAll(() => {
    model.dispose();
    tf.dispose(Object.values(fixture));
  });

  it('records every hook point once, each within 1e-5 of PyTorch (wasm: and 1e-6 of its peak), and frees them all', async () => {
    const { src, tgtIn } = { src: fixture['inputs/src'], tgtIn: fixture['inputs/tgtIn'] };
    expect(src.dtype).toBe('int32');
    expect(Array.from(src.dataSync())).toEqual(model.encodeWord('insight'));
    const before = tf.memory().numTensors;
    const { output, cache } = await runWithCache(model, () => model.forward(src, tgtIn));
    try {
      expect([...cache.names()].sort()).toEqual([...hookNames].sort());
      expect(hookNames).toHaveLength(87); // 3 encoder layers x (5 + 6), 3 decoder layers x (6 + 2 x 6)
      const check = (what: string, actual: tf.Tensor, expected: tf.Tensor): void => {
        const difference = maxAbsDifference(actual, expected, pointOf(what) === 'hookScores');
        const limit = allowance(backend, peakOf(expected));
        expect({ what, within: difference <= limit ? 'yes' : `${difference} > ${limit}` }).toEqual({ what, within: 'yes' });
      };
      check('logits', output, fixture['outputs/logits']);
      for (const name of hookNames) {
        expect(cache.calls(name)).toBe(1);
        check(name, cache.get(name), fixture[name]);
      }
      expect(new Set(hookNames.map(pointOf))).toEqual(
        new Set(['hookResidPre', 'hookResidMid', 'hookResidMidCross', 'hookResidPost', 'hookPre', 'hookPost', 'hookQ', 'hookK', 'hookV', 'hookScores', 'hookPattern', 'hookZ']),
      );
    } finally {
      output.dispose();
      cache.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it(`zero-ablating a head of ${ABLATED_MODULE} at hookZ equals zeroing its outProj.weight columns`, async () => {
    const { src, tgtIn } = { src: fixture['inputs/src'], tgtIn: fixture['inputs/tgtIn'] };
    const copy = await loadG2P();
    try {
      const attention = copy.transformer.decoder.layers[1].crossAttn;
      if (!attention) throw new Error('the decoder layer has no cross-attention');
      const { numHeads } = attention.config;
      const headDim = attention.config.inputDim / numHeads;
      const weight = attention.outProj.weight; // [out, in]: head h reads input columns [h*d, (h+1)*d)
      const original = tf.clone(weight);
      const plain = model.forward(src, tgtIn);
      try {
        for (let head = 0; head < numHeads; head++) {
          const { output: ablated } = await runWithHooks(model, () => model.forward(src, tgtIn), { [`${ABLATED_MODULE}.hookZ`]: zeroHeads([head]) });
          const columns = tf.tidy(() => {
            const keep = tf.tensor1d(Array.from({ length: numHeads * headDim }, (_, i) => (Math.floor(i / headDim) === head ? 0 : 1)));
            return tf.mul(original, keep); // [out, in] * [in]
          });
          weight.assign(columns);
          columns.dispose();
          const edited = copy.forward(src, tgtIn);
          expect(maxAbsDifference(ablated, edited)).toBeLessThan(TOLERANCE);
          expect(maxAbsDifference(ablated, plain)).toBeGreaterThan(1e-3); // the head mattered: the hook took effect
          tf.dispose([ablated, edited]);
        }
      } finally {
        weight.assign(original);
        tf.dispose([original, plain]);
      }
    } finally {
      copy.dispose();
    }
  });
});
