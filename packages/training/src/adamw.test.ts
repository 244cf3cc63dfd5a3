import { MieConfigError, MieSerializationError, parameter, readSafetensors, setBackend, tf, writeSafetensors } from '@mie/core';
import { AdamW, noDecayForBiasesAndNorms } from './adamw';
import { FIXTURE_BACKENDS, expectClose, loadFixture, toTensor, type EncodedTensor } from './__tests__/fixtures';

// Produced by scripts/fixtures/training.py with torch.optim.AdamW (amsgrad=False), two param groups.
const fixture = loadFixture().adamw;
const NAMES = Object.keys(fixture.params);

function makeParameters(): Array<[string, tf.Variable]> {
  return NAMES.map((name) => [name, parameter(toTensor(fixture.params[name]))]);
}

function gradsOf(step: { grads: Record<string, EncodedTensor> }): Record<string, tf.Tensor> {
  return Object.fromEntries(NAMES.map((name) => [name, toTensor(step.grads[name])]));
}

describe.each(FIXTURE_BACKENDS)('AdamW on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
  });

  it.each([0, 1])('matches torch.optim.AdamW step by step (case %i)', (i) => {
    const c = fixture.cases[i];
    const before = tf.memory().numTensors;
    const parameters = makeParameters();
    const optimizer = new AdamW(parameters, {
      lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay, noDecay: (name) => c.noDecay.includes(name),
    });
    expect(optimizer.config.noDecay).toEqual(['layer.bias']);
    c.steps.forEach((step: { grads: Record<string, EncodedTensor>; params: Record<string, EncodedTensor> }, n: number) => {
      const grads = gradsOf(step);
      optimizer.step(grads);
      tf.dispose(Object.values(grads));
      for (const [name, variable] of parameters) expectClose(variable, step.params[name], `step ${n + 1} ${name}`);
    });
    const state = optimizer.getState();
    expectClose(state.tensors['expAvg.layer.weight'], c.finalExpAvg, 'exp_avg');
    expectClose(state.tensors['expAvgSq.layer.weight'], c.finalExpAvgSq, 'exp_avg_sq');
    expect(state.json.steps).toEqual({ 'layer.weight': 5, 'layer.bias': 5, scale: 5 });
    optimizer.dispose();
    tf.dispose(parameters.map(([, v]) => v));
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('AdamW', () => {
  beforeAll(async () => {
    await setBackend('cpu');
  });

  it('saves and restores its state through safetensors: 3 steps + reload + 2 steps = 5 steps', () => {
    const c = fixture.cases[1];
    const options = { lr: c.lr, betas: c.betas, eps: c.eps, weightDecay: c.weightDecay, noDecay: noDecayForBiasesAndNorms };
    const parameters = makeParameters();
    const first = new AdamW(parameters, options);
    c.steps.slice(0, 3).forEach((step: { grads: Record<string, EncodedTensor> }) => first.step(gradsOf(step)));
    first.lr = 0.5 * c.lr;
    const state = first.getState();
    const bytes = writeSafetensors(state.tensors, { json: JSON.stringify(state.json) });
    first.dispose();

    const second = new AdamW(parameters, options);
    const { tensors, metadata } = readSafetensors(bytes);
    second.setState({ tensors, json: JSON.parse(metadata.json) });
    tf.dispose(Object.values(tensors));
    expect(second.lr).toBe(0.5 * c.lr);
    expect(second.stepCount('scale')).toBe(3);
    second.lr = c.lr;
    c.steps.slice(3).forEach((step: { grads: Record<string, EncodedTensor> }) => second.step(gradsOf(step)));
    for (const [name, variable] of parameters) expectClose(variable, c.steps[4].params[name], name);
    second.dispose();
  });

  it('skips parameters without a gradient, rejects unknown names and bad state', () => {
    const parameters = makeParameters();
    const optimizer = new AdamW(parameters);
    const before = parameters[1][1].dataSync().slice();
    optimizer.step({ scale: tf.ones([2, 2]) });
    expect(parameters[1][1].dataSync()).toEqual(before);
    expect(optimizer.stepCount('scale')).toBe(1);
    expect(optimizer.stepCount('layer.bias')).toBe(0);
    expect(() => optimizer.step({ nope: tf.ones([1]) })).toThrow(/"nope" names no parameter/);
    expect(() => optimizer.step({ scale: tf.ones([3]) })).toThrow(MieConfigError);
    const state = optimizer.getState();
    expect(() => optimizer.setState({ tensors: {}, json: state.json })).toThrow(MieSerializationError);
    expect(() => optimizer.setState({ tensors: state.tensors, json: { lr: 1, steps: { other: 1 } } })).toThrow(/"other" is not a parameter/);
    expect(() => new AdamW(parameters, { betas: [0.9, 1] })).toThrow(MieConfigError);
    expect(() => new AdamW(parameters, { weightDecy: 0 } as never)).toThrow(/unknown option "weightDecy"/);
  });

  it('noDecayForBiasesAndNorms excludes biases and normalisation weights', () => {
    expect(noDecayForBiasesAndNorms('layers.0.linear1.bias')).toBe(true);
    expect(noDecayForBiasesAndNorms('layers.0.norm1.weight')).toBe(true);
    expect(noDecayForBiasesAndNorms('hiddenLayers.0.layerNorm.weight')).toBe(true);
    expect(noDecayForBiasesAndNorms('layers.0.linear1.weight')).toBe(false);
  });
});
