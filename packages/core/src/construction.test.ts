import { setBackend } from './backend';
import { buildFromValues, isPlaceholder, stateLayout } from './construction';
import { MieResourceError, MieSerializationError, MieShapeError } from './errors';
import { Module, buffer, parameter } from './module';
import { tf } from './tfjs';

beforeAll(async () => {
  await setBackend('cpu');
});

/** Two layers of a chain, with a tied weight, a buffer, an old-style parameter and a persistent buffer. */
class Block extends Module {
  readonly weight: tf.Variable;
  readonly table: tf.Tensor;
  constructor(readonly width: number) {
    super();
    this.weight = parameter([width, width], (shape) => tf.fill(shape, 2));
    this.table = buffer([1000, width], () => tf.ones([1000, width]));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.matMul(x, this.weight);
  }
}

class Chain extends Module {
  readonly blocks: Block[];
  readonly tied: Block;
  readonly legacy: tf.Variable;
  readonly steps: tf.Variable;
  constructor(readonly options: { depth: number; width: number }) {
    super();
    this.blocks = Array.from({ length: options.depth }, () => new Block(options.width));
    this.tied = this.blocks[0];
    this.legacy = parameter(() => tf.zeros([3]));
    this.steps = parameter([1], (shape) => tf.zeros(shape, 'int32'), { trainable: false, dtype: 'int32' });
  }
  forward(x: tf.Tensor): tf.Tensor {
    return this.blocks.reduce((h, block) => block.forward(h), x);
  }
}

describe('stateLayout', () => {
  it('gives the state dict a build implies (names, shapes, dtypes, counts) without allocating', () => {
    const before = tf.memory().numTensors;
    const layout = stateLayout(() => new Chain({ depth: 3, width: 4 }));
    // Only the old-style parameter computed (and freed) its value to learn its shape.
    expect(tf.memory().numTensors).toBe(before);
    const real = new Chain({ depth: 3, width: 4 });
    expect(layout.entries).toEqual(real.namedParameters().map(([name, v]) => ({ name, shape: v.shape, dtype: v.dtype, trainable: v.trainable })));
    expect(layout.entries.map((e) => e.name)).toEqual(['legacy', 'steps', 'blocks.0.weight', 'blocks.1.weight', 'blocks.2.weight']);
    expect(layout.parameterElements).toBe(real.countParameters({ trainableOnly: false }));
    expect(layout.bufferElements).toBe(3 * 1000 * 4);
    expect(layout.creationOrder).toEqual(['blocks.0.weight', 'blocks.1.weight', 'blocks.2.weight', 'legacy', 'steps']);
    real.dispose();
  });

  it('stops a build past its limits at once, with nothing allocated', () => {
    const before = tf.memory().numTensors;
    let built = 0;
    const build = () => {
      built++;
      return new Chain({ depth: 1_000_000, width: 4 });
    };
    const start = performance.now();
    expect(() => stateLayout(build, { maxTensors: 50 })).toThrow(MieResourceError);
    expect(() => stateLayout(() => new Chain({ depth: 2, width: 100_000 }), { maxElements: 1e6 })).toThrow(/more than 1000000 parameters/);
    expect(() => stateLayout(() => new Chain({ depth: 2, width: 4 }), { maxBufferElements: 1000 })).toThrow(/tables of more than 1000 values/);
    expect(performance.now() - start).toBeLessThan(1000);
    expect(built).toBe(1);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('hands out placeholders that hold no data and cannot be computed with', () => {
    let seen: tf.Variable | undefined;
    stateLayout(() => {
      const chain = new Chain({ depth: 1, width: 2 });
      seen = chain.blocks[0].weight;
      return chain;
    });
    expect(isPlaceholder(seen)).toBe(true);
    expect(seen).toBeInstanceOf(tf.Variable);
    expect(seen!.isDisposed).toBe(true);
    expect(() => seen!.dataSync()).toThrow(/disposed/);
  });
});

describe('buildFromValues', () => {
  it('takes each parameter from the given values (no initialisation), tied weights once', () => {
    const layout = stateLayout(() => new Chain({ depth: 2, width: 2 }));
    const asked: string[] = [];
    const before = tf.memory().numTensors;
    const chain = buildFromValues(() => new Chain({ depth: 2, width: 2 }), layout, (name) => {
      asked.push(name);
      const entry = layout.entries.find((e) => e.name === name)!;
      return tf.fill(entry.shape, asked.length, entry.dtype as 'float32' | 'int32');
    });
    expect(asked).toEqual(['blocks.0.weight', 'blocks.1.weight', 'legacy', 'steps']);
    expect(Array.from(chain.blocks[1].weight.dataSync())).toEqual([2, 2, 2, 2]);
    expect(chain.tied.weight).toBe(chain.blocks[0].weight);
    expect(Array.from(chain.steps.dataSync())).toEqual([4]);
    expect(chain.steps.dtype).toBe('int32');
    expect(chain.steps.trainable).toBe(false);
    // Parameters, the two buffers: nothing else stays allocated.
    expect(tf.memory().numTensors - before).toBe(4 + 2);
    chain.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('frees what it built when a value or the build fails', () => {
    const layout = stateLayout(() => new Chain({ depth: 3, width: 2 }));
    const before = tf.memory().numTensors;
    expect(() =>
      buildFromValues(() => new Chain({ depth: 3, width: 2 }), layout, (name) => {
        if (name === 'blocks.2.weight') throw new MieSerializationError('bad value');
        return tf.zeros([2, 2]);
      }),
    ).toThrow('bad value');
    expect(tf.memory().numTensors).toBe(before);
    // A build that does not follow its layout (another config) is refused.
    expect(() => buildFromValues(() => new Chain({ depth: 3, width: 3 }), layout, () => tf.zeros([2, 2]))).toThrow(/was built with shape \[3, 3\], the layout has \[2, 2\]/);
    expect(() => buildFromValues(() => new Chain({ depth: 2, width: 2 }), layout, () => tf.zeros([2, 2]))).toThrow(MieSerializationError);
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('parameter and buffer', () => {
  it('check the declared shape and survive an enclosing tidy', () => {
    expect(() => parameter([2, 3], () => tf.zeros([3, 2]))).toThrow(MieShapeError);
    const kept = tf.tidy(() => {
      const table = buffer([2], () => tf.ones([2]));
      return { table };
    });
    expect(kept.table.isDisposed).toBe(false);
    kept.table.dispose();
  });
});
