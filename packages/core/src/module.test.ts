import { MieConfigError, MieSerializationError, MieShapeError } from './errors';
import { Module, OUTPUT_FIELD, checkRank, parameter, type ForwardMethods } from './module';
import { setBackend } from './backend';
import { tf } from './tfjs';

class Dense extends Module {
  readonly config: { inFeatures: number; outFeatures: number };
  weight: tf.Variable;
  bias: tf.Variable;
  constructor(inFeatures: number, outFeatures: number) {
    super();
    this.config = { inFeatures, outFeatures };
    this.weight = parameter(() => tf.fill([outFeatures, inFeatures], 0.5));
    this.bias = parameter(() => tf.zeros([outFeatures]));
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.add(tf.matMul(x, this.weight, false, true), this.bias));
  }
}

class Stack extends Module {
  embedding = new Dense(2, 3);
  layers = [new Dense(3, 3), new Dense(3, 3)];
  steps = parameter(() => tf.zeros([1]), { trainable: false });
  table = tf.keep(tf.ones([4])); // owned, not state
  head: Dense;
  constructor(tie = false) {
    super();
    this.head = tie ? this.layers[0] : new Dense(3, 1);
  }
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.head.forward(this.layers.reduce((h, layer) => layer.forward(h), this.embedding.forward(x))));
  }
}

beforeAll(async () => {
  await setBackend('cpu');
});

describe('Module', () => {
  it('finds children and parameters from fields, arrays included, with dotted names in assignment order', () => {
    const m = new Stack();
    // A module's own variables come before its children's, as in PyTorch's named_parameters().
    expect(m.namedParameters().map(([n]) => n)).toEqual([
      'steps',
      'embedding.weight',
      'embedding.bias',
      'layers.0.weight',
      'layers.0.bias',
      'layers.1.weight',
      'layers.1.bias',
      'head.weight',
      'head.bias',
    ]);
    expect(m.namedChildren().map(([n]) => n)).toEqual(['embedding', 'layers.0', 'layers.1', 'head']);
    expect(m.namedModules().map(([n]) => n)).toEqual(['', 'embedding', 'layers.0', 'layers.1', 'head']);
    m.dispose();
  });

  it('counts trainable parameters, and buffers only when asked', () => {
    const m = new Stack();
    expect(m.countParameters()).toBe(9 + 12 + 12 + 4);
    expect(m.countParameters({ trainableOnly: false })).toBe(9 + 12 + 12 + 4 + 1);
    expect(m.trainableParameters()).toHaveLength(8);
    m.dispose();
  });

  it('lists a tied module once, under its first path', () => {
    const m = new Stack(true);
    const names = m.namedParameters().map(([n]) => n);
    expect(names).not.toContain('head.weight');
    expect(names.filter((n) => n.startsWith('layers.0'))).toEqual(['layers.0.weight', 'layers.0.bias']);
    expect(m.namedModules().map(([n]) => n)).toEqual(['', 'embedding', 'layers.0', 'layers.1']);
    m.dispose();
  });

  it('round-trips its state dict and loads values (with a dtype cast)', () => {
    const a = new Stack();
    const b = new Stack();
    tf.tidy(() => a.layers[1].weight.assign(tf.randomNormal([3, 3], 0, 1, 'float32', 1)));
    b.loadStateDict(a.stateDict());
    expect(Array.from(b.layers[1].weight.dataSync())).toEqual(Array.from(a.layers[1].weight.dataSync()));
    const intBias = tf.tensor1d([1, 2, 3], 'int32');
    b.loadStateDict({ ...b.stateDict(), 'layers.0.bias': intBias });
    expect(b.layers[0].bias.dtype).toBe('float32');
    expect(Array.from(b.layers[0].bias.dataSync())).toEqual([1, 2, 3]);
    intBias.dispose();
    a.dispose();
    b.dispose();
  });

  it('names every missing, unexpected and mis-shaped key, and changes nothing on failure', () => {
    const m = new Stack();
    const before = Array.from(m.embedding.weight.dataSync());
    const state: Record<string, tf.Tensor> = { ...m.stateDict() };
    const fresh = tf.zeros([3, 2]);
    const wrong = tf.zeros([5]);
    const extra = tf.zeros([1]);
    state['embedding.weight'] = fresh;
    state['layers.1.bias'] = wrong;
    state['surplus.weight'] = extra;
    delete state['head.bias'];
    delete state['steps'];
    let message = '';
    try {
      m.loadStateDict(state);
    } catch (error) {
      expect(error).toBeInstanceOf(MieSerializationError);
      message = (error as Error).message;
    }
    expect(message).toContain('"layers.1.bias" has shape [5], expected [3]');
    expect(message).toContain('missing keys: "steps", "head.bias"');
    expect(message).toContain('unexpected keys: "surplus.weight"');
    expect(Array.from(m.embedding.weight.dataSync())).toEqual(before);

    // Non-strict: missing and unexpected keys are reported, shapes still checked.
    expect(() => m.loadStateDict(state, { strict: false })).toThrow(/layers\.1\.bias/);
    state['layers.1.bias'] = m.layers[1].bias;
    const result = m.loadStateDict(state, { strict: false });
    expect(result).toEqual({ missingKeys: ['steps', 'head.bias'], unexpectedKeys: ['surplus.weight'] });
    expect(Array.from(m.embedding.weight.dataSync())).toEqual([0, 0, 0, 0, 0, 0]);
    tf.dispose([fresh, wrong, extra]);
    m.dispose();
  });

  it('rejects disposed tensors in a state dict', () => {
    const m = new Dense(1, 1);
    const t = tf.zeros([1, 1]);
    t.dispose();
    expect(() => m.loadStateDict({ weight: t, bias: m.bias })).toThrow(/"weight" is not a live tensor/);
    m.dispose();
  });

  it('switches train/eval on every descendant', () => {
    const m = new Stack();
    expect(m.modules().every((x) => x.training)).toBe(true);
    expect(m.eval()).toBe(m);
    expect(m.modules().every((x) => !x.training)).toBe(true);
    m.train();
    expect(m.layers[1].training).toBe(true);
    m.dispose();
  });

  it('frees every variable and owned tensor on dispose (also through `using`)', () => {
    const before = tf.memory().numTensors;
    const m = new Stack(true);
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    m[Symbol.dispose]();
    expect(m.isDisposed).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
    m.dispose(); // idempotent
    expect(tf.memory().numTensors).toBe(before);
  });

  it('runs forward hooks on nested calls, lets them replace outputs, and removes them', () => {
    const m = new Stack();
    const seen: Array<[number[], number]> = [];
    const remove = m.layers[1].registerForwardHook((module, inputs, output) => {
      expect(module).toBe(m.layers[1]);
      seen.push([(inputs[0] as tf.Tensor).shape, (output as tf.Tensor).size]);
    });
    const x = tf.ones([4, 2]);
    tf.dispose(m.forward(x));
    expect(seen).toEqual([[[4, 3], 12]]);
    const removeZero = m.head.registerForwardHook((_m, _i, output) => tf.zerosLike(output as tf.Tensor));
    const zeroed = m.forward(x);
    expect(Array.from(zeroed.dataSync())).toEqual([0, 0, 0, 0]);
    expect(seen).toHaveLength(2);
    remove();
    removeZero();
    const plain = m.forward(x);
    expect(seen).toHaveLength(2);
    expect(plain.dataSync().some((v) => v !== 0)).toBe(true);
    expect(Object.prototype.hasOwnProperty.call(m.head, 'forward')).toBe(false);
    tf.dispose([x, zeroed, plain]);
    m.dispose();
  });

  it('hooks every forward method once per call, and never frees an input they replace', () => {
    class TwoDoors extends Module {
      static override readonly forwardMethods: ForwardMethods = { forward: null, forwardWithExtra: OUTPUT_FIELD };
      forward(x: tf.Tensor): tf.Tensor {
        const { output, extra } = this.forwardWithExtra(x);
        extra.dispose();
        return output;
      }
      forwardWithExtra(x: tf.Tensor): { output: tf.Tensor; extra: tf.Tensor } {
        return { output: tf.mul(x, 2), extra: tf.add(x, 1) };
      }
    }
    class Identity extends Module {
      forward(x: tf.Tensor): tf.Tensor {
        return x;
      }
    }
    const m = new TwoDoors();
    const calls: string[] = [];
    const remove = m.registerForwardHook((_m, _inputs, output, { method }) => {
      calls.push(method);
      return tf.neg(output as tf.Tensor);
    });
    const x = tf.tensor1d([1, 2]);
    const before = tf.memory().numTensors;
    const y = m.forward(x);
    expect(Array.from(y.dataSync())).toEqual([-2, -4]);
    const both = m.forwardWithExtra(x);
    expect(Array.from(both.output.dataSync())).toEqual([-2, -4]);
    expect(Array.from(both.extra.dataSync())).toEqual([2, 3]);
    expect(calls).toEqual(['forward', 'forwardWithExtra']); // the nested call is part of forward
    tf.dispose([y, both.output, both.extra]);
    expect(tf.memory().numTensors).toBe(before); // replaced outputs were freed
    remove();
    expect(Object.prototype.hasOwnProperty.call(m, 'forwardWithExtra')).toBe(false);
    const id = new Identity();
    const removeId = id.registerForwardHook((_m, _i, output) => tf.mul(output as tf.Tensor, 3));
    const tripled = id.forward(x);
    expect(x.isDisposed).toBe(false); // the replaced output was the input: kept
    expect(Array.from(tripled.dataSync())).toEqual([3, 6]);
    removeId();
    expect(() => id.registerForwardHook('no' as never)).toThrow(MieConfigError);
    tf.dispose([x, tripled]);
  });

  it('checkRank names the module and the argument', () => {
    const x = tf.zeros([2, 3]);
    expect(checkRank('Test', 'input', x, [2])).toBe(x);
    expect(() => checkRank('Test', 'input', x, 3)).toThrow(MieShapeError);
    expect(() => checkRank('Test', 'input', x, 3)).toThrow('Test: input must have rank 3. Received: shape [2, 3] (rank 2).');
    expect(() => checkRank('Test', 'input', [1, 2], 1)).toThrow('Test: input must be a live tf.Tensor');
    x.dispose();
  });

  it('walks models of any width or depth without overflowing the stack', () => {
    class Leaf extends Module {
      forward(): void {}
    }
    class Wide extends Module {
      readonly children_: Leaf[];
      constructor(n: number) {
        super();
        this.children_ = Array.from({ length: n }, () => new Leaf());
      }
      forward(): void {}
    }
    class Link extends Module {
      next: Module | null = null;
      forward(): void {}
    }
    const wide = new Wide(300_000);
    expect(wide.namedModules()).toHaveLength(300_001);
    expect(wide.namedModules()[300_000][0]).toBe('children_.299999');
    const head = new Link();
    let tail = head;
    for (let i = 0; i < 50_000; i++) {
      const next = new Link();
      tail.next = next;
      tail = next;
    }
    const names = head.namedModules();
    expect(names).toHaveLength(50_001);
    expect(names[2][0]).toBe('next.next');
  });

  it('caps loadStateDict messages and names what is wrong', () => {
    const m = new Stack();
    const state: Record<string, tf.Tensor> = {};
    const extra = tf.zeros([1]);
    for (let i = 0; i < 5000; i++) state[`layers.${i}.weight`] = extra;
    let message = '';
    try {
      m.loadStateDict(state);
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/"layers\.0\.weight" has shape \[1\], expected \[3, 3\]; .*unexpected keys: "layers\.2\.weight", .* and 4988 more\.$/);
    expect(message.length).toBeLessThan(1000);
    extra.dispose();
    m.dispose();
  });

  it('refuses every method of a disposed module with a MieConfigError', () => {
    const m = new Stack();
    const x = tf.ones([4, 2]);
    m.dispose();
    expect(() => m.forward(x)).toThrow(MieConfigError);
    expect(() => m.forward(x)).toThrow(/Stack\.forward: the module was disposed/);
    expect(() => m.layers[0].forward(x)).toThrow(/the module was disposed/);
    expect(() => m.dispose()).not.toThrow();
    expect(m.namedParameters().length).toBeGreaterThan(0);
    x.dispose();
  });
});
