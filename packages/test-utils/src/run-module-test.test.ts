import { Module, parameter, setBackend, setSeed, tf } from '@mie/core';
import { backendAgreement } from './backend-agreement';
import { runModuleTest } from './run-module-test';
import { TinyDense, TinyEmbedding, TinyMlp } from './test-modules';

beforeAll(async () => {
  await setBackend('cpu');
  setSeed(7);
});

const batch = () => [tf.randomNormal([3, 5], 0, 1, 'float32', 3)];

describe('runModuleTest on core test modules', () => {
  it('passes for a BaseModel with nested children and dropout', async () => {
    await runModuleTest(() => new TinyMlp({ inputSize: 5, hiddenSize: 8, outputSize: 4, dropout: 0.3 }), batch, {
      expectedParameterCount: 5 * 8 + 8 + 8 * 4 + 4,
    });
  });

  it('passes for a plain Module', async () => {
    await runModuleTest(() => new TinyDense({ inFeatures: 5, outFeatures: 2 }), batch, { expectedParameterCount: 12 });
  });

  it('passes for a module without parameters', async () => {
    class Doubler extends Module {
      readonly config = {};
      forward(x: tf.Tensor): tf.Tensor {
        return tf.mul(x, 2);
      }
    }
    await runModuleTest(() => new Doubler(), batch, { expectedParameterCount: 0 });
  });

  it('passes for an embedding (gather gradient on wasm)', async () => {
    await runModuleTest(() => new TinyEmbedding({ vocabSize: 6, dim: 3 }), () => [tf.tensor2d([[0, 1, 2], [3, 4, 5]], [2, 3], 'int32')]);
  });
});

// The battery must catch each defect it claims to catch.
describe('runModuleTest catches defects', () => {
  class UnusedParameter extends TinyDense {
    extra = parameter(() => tf.ones([2]));
  }

  class Leaky extends TinyDense {
    override forward(x: tf.Tensor): tf.Tensor {
      tf.keep(tf.ones([1])); // escapes every tidy: a leak
      return super.forward(x);
    }
  }

  class WrongCount extends TinyDense {}

  class BadConfig extends TinyDense {
    constructor(config: { inFeatures: number; outFeatures: number }) {
      super({ ...config, outFeatures: config.outFeatures + 1 });
    }
  }

  class BackendDependent extends TinyDense {
    override forward(x: tf.Tensor): tf.Tensor {
      return tf.tidy(() => tf.add(super.forward(x), tf.getBackend() === 'wasm' ? 1e-3 : 0));
    }
  }

  class Nondeterministic extends TinyDense {
    override forward(x: tf.Tensor): tf.Tensor {
      return tf.tidy(() => tf.add(super.forward(x), tf.randomUniform([1])));
    }
  }

  class NoTensor extends Module {
    readonly config = {};
    forward(): number {
      return 1;
    }
  }

  const dense = { inFeatures: 5, outFeatures: 2 };
  it.each([
    ['an unused parameter', () => new UnusedParameter(dense), /parameter "extra" received no gradient/, {}],
    ['a leak', () => new Leaky(dense), /tensor leak/, {}],
    ['a wrong parameter count', () => new WrongCount(dense), /countParameters\(\) = 12, expected 13/, { expectedParameterCount: 13 }],
    ['a config that does not round trip', () => new BadConfig(dense), /config round trip/, {}],
    ['backends that disagree', () => new BackendDependent(dense), /cpu\/wasm agreement/, {}],
    ['a nondeterministic eval forward', () => new Nondeterministic(dense), /eval determinism/, {}],
    ['a forward without tensors', () => new NoTensor(), /returned no tensor/, {}],
  ])('fails on %s', async (_label, factory, message, options) => {
    await expect(runModuleTest(factory as () => TinyDense, batch, options)).rejects.toThrow(message);
  });
});

describe('backendAgreement', () => {
  const dense = { inFeatures: 5, outFeatures: 2 };

  it('reports the differences per backend, restores the backend and leaks nothing', async () => {
    await setBackend('cpu');
    const before = tf.memory().numTensors;
    const results = await backendAgreement(() => new TinyDense(dense), batch, { backends: ['cpu', 'wasm'] });
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ backend: 'wasm', outputs: 1, gradients: 2 });
    expect(results[0].outputDifference).toBeLessThan(1e-5);
    expect(results[0].gradientDifference).toBeLessThan(1e-4);
    expect(tf.getBackend()).toBe('cpu');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('compares training mode with the same dropout masks on every backend', async () => {
    const results = await backendAgreement(() => new TinyMlp({ inputSize: 5, hiddenSize: 8, outputSize: 4, dropout: 0.5 }), batch, {
      backends: ['cpu', 'wasm'],
      training: true,
    });
    expect(results[0].outputDifference).toBeLessThan(1e-5);
  });

  it('names the module, the backends and the difference when they disagree', async () => {
    class Skewed extends TinyDense {
      override forward(x: tf.Tensor): tf.Tensor {
        return tf.tidy(() => tf.add(super.forward(x), tf.getBackend() === 'wasm' ? 0.01 : 0));
      }
    }
    await expect(backendAgreement(() => new Skewed(dense), batch, { backends: ['cpu', 'wasm'] })).rejects.toThrow(/^runModuleTest\(Skewed\) cpu\/wasm agreement: /);
    expect(tf.getBackend()).toBe('cpu');
  });
});
