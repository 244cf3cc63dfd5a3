import { setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { G2PModel } from './g2p-model';

const TRANSFORMER = { dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, dropout: 0.1, maxSeqLength: 16, positionalEncoding: 'sinusoidal' as const, normFirst: true };

describe('G2PModel', () => {
  beforeAll(async () => {
    await setBackend('cpu');
    setSeed(3);
  });

  it('passes the module battery (round trips, gradients to every parameter, no leak, cpu/wasm agreement)', async () => {
    const probe = new G2PModel({ transformer: TRANSFORMER });
    const src = () => probe.sourceBatch(['cat', "o'er"]); // [2, 5]: letters then </s>, padded
    const tgtIn = () => tf.tensor2d([[1, 5, 6, 7], [1, 8, 0, 0]], [2, 4], 'int32');
    await runModuleTest(() => new G2PModel({ transformer: TRANSFORMER }), () => [src(), tgtIn()]);
    probe.dispose();
  });

  it('spells words with its letters then </s>, refusing unknown characters by name', () => {
    const model = new G2PModel({ transformer: TRANSFORMER });
    try {
      const eos = 2;
      expect(model.encodeWord('ab')).toEqual([model.letters.encode('a')[0], model.letters.encode('b')[0], eos]);
      expect(() => model.encodeWord('a1')).toThrow(/G2PModel: cannot spell "a1"/);
    } finally {
      model.dispose();
    }
  });
});
