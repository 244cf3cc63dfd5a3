import { parameter, setBackend, tf } from '@mie/core';
import { AdamW } from './adamw';
import { ADAMW_KERNEL, registerAdamWKernel } from './adamw-kernel';

/** Runs 4 AdamW steps on two parameters and returns their values and the moments. */
function run(): number[][] {
  const w = parameter(() => tf.tensor2d([[0.5, -1.25, 2], [0.1, 0, -0.3]]));
  const b = parameter(() => tf.tensor1d([0.2, -0.7]));
  const optimizer = new AdamW([['w', w], ['b', b]], { lr: 0.05, weightDecay: 0.1, noDecay: (name) => name === 'b' });
  for (let step = 1; step <= 4; step++) {
    const grads = { w: tf.tensor2d([[0.3 * step, -0.2, 1e-4], [-2, 0.5, 0]]), b: tf.tensor1d([step * 0.1, -0.05]) };
    optimizer.lr = 0.05 / step;
    optimizer.step(grads);
    tf.dispose(Object.values(grads));
  }
  const state = optimizer.getState();
  const values = [w, b, ...Object.values(state.tensors)].map((t) => Array.from(t.dataSync()));
  optimizer.dispose();
  tf.dispose([w, b]);
  return values;
}

describe.each(['cpu', 'wasm'] as const)('fused AdamW kernel on %s', (backend) => {
  beforeAll(async () => {
    await setBackend(backend);
    registerAdamWKernel();
  });

  it('is registered and gives the same parameters and moments as the composed update', () => {
    expect(tf.getKernel(ADAMW_KERNEL, backend)).toBeDefined();
    const before = tf.memory().numTensors;
    const fused = run();
    const config = tf.getKernel(ADAMW_KERNEL, backend)!;
    tf.unregisterKernel(ADAMW_KERNEL, backend);
    try {
      const composed = run();
      fused.forEach((values, i) => values.forEach((v, j) => expect(Math.abs(v - composed[i][j])).toBeLessThan(1e-6 * (1 + Math.abs(v)))));
    } finally {
      tf.registerKernel(config);
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
