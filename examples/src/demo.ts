/**
 * The foundation demo: build a small model from @mie/core, train it a few hundred steps on the
 * default backend, save it, load it back and check that the loaded copy predicts the same.
 *
 *   pnpm demo [--out DIR] [--steps N]
 */
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, getDevice, kaimingUniform, parameter, ready, registerModel, setSeed, tf } from '@mie/core';

interface RegressorOptions {
  hiddenSize: number;
}

/** A one-hidden-layer network fitting y = sin(3x) on [-1, 1]. */
class SineRegressor extends BaseModel<RegressorOptions> {
  readonly config: RegressorOptions;
  hiddenWeight: tf.Variable;
  hiddenBias: tf.Variable;
  outputWeight: tf.Variable;
  outputBias: tf.Variable;

  constructor(options: RegressorOptions) {
    super();
    this.config = { ...options };
    this.hiddenWeight = parameter([options.hiddenSize, 1], (shape) => kaimingUniform(shape));
    this.hiddenBias = parameter([options.hiddenSize], (shape) => tf.randomUniform(shape, -1, 1, 'float32', 1));
    this.outputWeight = parameter([1, options.hiddenSize], (shape) => kaimingUniform(shape));
    this.outputBias = parameter([1], (shape) => tf.zeros(shape));
  }

  /** x: [n, 1] -> [n, 1] */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const hidden = tf.tanh(tf.add(tf.matMul(x, this.hiddenWeight, false, true), this.hiddenBias));
      return tf.add(tf.matMul(hidden, this.outputWeight, false, true), this.outputBias);
    });
  }
}
registerModel(SineRegressor);

function argument(name: string, fallback: string): string {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 && process.argv[index + 1] ? process.argv[index + 1] : fallback;
}

async function main(): Promise<void> {
  const out = argument('out', path.join(os.tmpdir(), 'mie-demo', 'sine-regressor'));
  const steps = Number(argument('steps', '300'));
  const device = await ready();
  console.log(`backend: ${device.backend} (${device.package}, ${device.kind})`);
  setSeed(42);

  const model = new SineRegressor({ hiddenSize: 32 });
  console.log(`model: SineRegressor with ${model.countParameters()} parameters`);
  const x = tf.tidy(() => tf.reshape(tf.linspace(-1, 1, 256), [256, 1]));
  const y = tf.tidy(() => tf.sin(tf.mul(x, 3)));
  const optimizer = tf.train.adam(0.02);
  const loss = () => tf.losses.meanSquaredError(y, model.forward(x)) as tf.Scalar;
  const started = Date.now();
  for (let step = 1; step <= steps; step++) {
    const value = optimizer.minimize(loss, true, model.trainableParameters());
    if (step === 1 || step % 100 === 0 || step === steps) console.log(`step ${String(step).padStart(4)}  mse ${value!.dataSync()[0].toFixed(5)}`);
    value?.dispose();
  }
  console.log(`trained ${steps} steps in ${Date.now() - started} ms`);

  await model.save(out);
  const loaded = await SineRegressor.load(out);
  const expected = model.eval().forward(x);
  const actual = loaded.forward(x);
  const maxDiff = tf.max(tf.abs(tf.sub(expected, actual))).dataSync()[0];
  console.log(`saved to ${out}; reloaded copy differs by at most ${maxDiff}`);
  const finalMse = tf.losses.meanSquaredError(y, actual).dataSync()[0];
  tf.dispose([x, y, expected, actual]);
  optimizer.dispose();
  model.dispose();
  loaded.dispose();
  if (maxDiff !== 0 || !(finalMse < 0.01)) {
    console.error(`demo failed: reload difference ${maxDiff}, final mse ${finalMse}`);
    process.exitCode = 1;
  } else {
    console.log(`ok on ${getDevice().backend}: final mse ${finalMse.toFixed(5)}`);
  }
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
