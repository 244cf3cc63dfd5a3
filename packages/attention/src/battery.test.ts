import { setBackend, setSeed, tf } from '@mie/core';
import { runModuleTest } from '@mie/test-utils';
import { ALiBiAttention } from './alibi-attention';
import { GroupedQueryAttention } from './grouped-query-attention';
import { MultiHeadAttention } from './multi-head-attention';
import { ScaledDotProductAttention } from './scaled-dot-product-attention';
import { SimpleAttention } from './simple-attention';

const x = () => tf.randomNormal([2, 5, 16], 0, 1, 'float32', 3);
const linear = (inputs: number, outputs: number) => inputs * outputs + outputs;

beforeAll(async () => {
  await setBackend('cpu');
  setSeed(1);
});

describe('shared module battery', () => {
  it('ScaledDotProductAttention', async () => {
    await runModuleTest(() => new ScaledDotProductAttention({ dropout: 0.1 }), () => {
      const [q, k, v] = [3, 4, 5].map((seed) => tf.randomNormal([2, 4, 6], 0, 1, 'float32', seed));
      return [q, k, v, { mask: tf.tensor2d([[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1], [1, 0, 0, 1]]) }];
    }, { expectedParameterCount: 0 });
  });

  it('MultiHeadAttention (self-attention, causal, key padding)', async () => {
    await runModuleTest(
      () => new MultiHeadAttention({ inputDim: 16, numHeads: 4 }),
      () => {
        const input = x();
        return [input, input, input, { causal: true, keyPaddingMask: tf.tensor2d([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]) }];
      },
      { expectedParameterCount: 4 * linear(16, 16) },
    );
  });

  it('MultiHeadAttention (rotary, cross-attention)', async () => {
    await runModuleTest(
      () => new MultiHeadAttention({ inputDim: 16, numHeads: 2, useRotaryEmbeddings: true, maxSeqLength: 16 }),
      () => [x(), tf.randomNormal([2, 5, 16], 0, 1, 'float32', 8), tf.randomNormal([2, 5, 16], 0, 1, 'float32', 9)],
      { expectedParameterCount: 4 * linear(16, 16) },
    );
  });

  it('SimpleAttention', async () => {
    await runModuleTest(() => new SimpleAttention({ inputDim: 16, attentionDim: 8 }), () => [x()], {
      expectedParameterCount: 3 * linear(16, 8),
    });
  });

  it('GroupedQueryAttention', async () => {
    await runModuleTest(() => new GroupedQueryAttention({ dModel: 16, numHeads: 4, numKeyValueHeads: 2 }), () => [x(), { causal: true }], {
      expectedParameterCount: 2 * linear(16, 16) + 2 * linear(16, 8),
    });
  });

  it('ALiBiAttention', async () => {
    await runModuleTest(() => new ALiBiAttention({ hiddenSize: 16, numHeads: 3 * 2 + 2 }), () => [x()], {
      expectedParameterCount: 4 * linear(16, 16),
    });
  });
});

describe('configuration errors', () => {
  it.each([
    [() => new MultiHeadAttention({ inputDim: 10, numHeads: 3 }), 'MultiHeadAttention: option "inputDim" must be divisible by numHeads (3). Received: 10.'],
    [() => new MultiHeadAttention({ inputDim: 6, numHeads: 2, useRotaryEmbeddings: true }), /needs an even head size; inputDim \/ numHeads is 3/],
    [() => new MultiHeadAttention({ inputDim: 8, numHeads: 2, dropout: 1 }), 'MultiHeadAttention: option "dropout" must be a probability in [0, 1). Received: 1.'],
    [() => new GroupedQueryAttention({ dModel: 16, numHeads: 4, numKeyValueHeads: 3 }), 'GroupedQueryAttention: option "numHeads" must be divisible by numKeyValueHeads (3). Received: 4.'],
    [() => new ALiBiAttention({ hiddenSize: 16, numHeads: 0 }), 'ALiBiAttention: option "numHeads" must be a positive integer. Received: 0.'],
    [() => new SimpleAttention({ inputDim: 4, attentionDims: 2 } as never), /SimpleAttention: unknown option "attentionDims"/],
  ])('%#', (build, message) => {
    expect(build).toThrow(message);
  });

  it('rejects inputs of the wrong width or rank', () => {
    const mha = new MultiHeadAttention({ inputDim: 8, numHeads: 2 });
    const wide = tf.zeros([1, 2, 9]);
    expect(() => mha.forward(wide, wide, wide)).toThrow(
      'MultiHeadAttention: query must be a float32 tensor [batch, seq, inputDim = 8]. Received: tensor float32[1, 2, 9].',
    );
    const flat = tf.zeros([2, 8]);
    expect(() => new GroupedQueryAttention({ dModel: 8, numHeads: 2 }).forward(flat)).toThrow(/GroupedQueryAttention: input x must be a float32 tensor \[batch, seq, dModel = 8\]/);
    tf.dispose([wide, flat]);
    mha.dispose();
  });
});
