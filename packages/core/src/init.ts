/**
 * Weight initialisers with `torch.nn.init`'s formulas and defaults:
 * Kaiming (He et al. 2015) with `a = 0`, fan-in mode, gain sqrt(2); Xavier (Glorot & Bengio 2010)
 * with gain 1. Fans follow PyTorch: for a weight `[out, in, ...receptive]`,
 * fanIn = in x receptive and fanOut = out x receptive.
 */
import { MieConfigError, errorMessage } from './errors';
import { nextSeed } from './random';
import { tf } from './tfjs';

/** The initialiser names accepted by `initType` options. */
export const INIT_TYPES = ['kaiming_uniform', 'kaiming_normal', 'xavier_uniform', 'xavier_normal'] as const;
/** One of {@link INIT_TYPES}. */
export type InitType = (typeof INIT_TYPES)[number];

/** PyTorch's `_calculate_fan_in_and_fan_out`. */
export function computeFans(shape: readonly number[]): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new MieConfigError(errorMessage('init', 'shape', 'needs at least 2 dimensions to compute fan in and fan out', shape));
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** Uniform(-bound, bound) as a float32 tensor, seeded from the global seed. */
export function uniform(shape: number[], bound: number): tf.Tensor {
  return tf.randomUniform(shape, -bound, bound, 'float32', nextSeed());
}

/** Normal(0, std) as a float32 tensor, seeded from the global seed. */
export function normal(shape: number[], std: number): tf.Tensor {
  return tf.randomNormal(shape, 0, std, 'float32', nextSeed());
}

/** `torch.nn.init.kaiming_uniform_(w, a=0, mode='fan_in', nonlinearity='leaky_relu')`. */
export function kaimingUniform(shape: number[]): tf.Tensor {
  const { fanIn } = computeFans(shape);
  return uniform(shape, Math.sqrt(2) * Math.sqrt(3 / fanIn));
}

/** `torch.nn.init.kaiming_normal_(w, a=0, mode='fan_in', nonlinearity='leaky_relu')`. */
export function kaimingNormal(shape: number[]): tf.Tensor {
  const { fanIn } = computeFans(shape);
  return normal(shape, Math.sqrt(2) / Math.sqrt(fanIn));
}

/** `torch.nn.init.xavier_uniform_(w, gain=1)`. */
export function xavierUniform(shape: number[], gain = 1): tf.Tensor {
  const { fanIn, fanOut } = computeFans(shape);
  return uniform(shape, gain * Math.sqrt(6 / (fanIn + fanOut)));
}

/** `torch.nn.init.xavier_normal_(w, gain=1)`. */
export function xavierNormal(shape: number[], gain = 1): tf.Tensor {
  const { fanIn, fanOut } = computeFans(shape);
  return normal(shape, gain * Math.sqrt(2 / (fanIn + fanOut)));
}

/** Checks an `initType` option, naming the module that received it. */
export function checkInitType(module: string, value: unknown): InitType {
  if (typeof value !== 'string' || !(INIT_TYPES as readonly string[]).includes(value)) {
    throw new MieConfigError(errorMessage(module, 'option "initType"', `must be one of ${INIT_TYPES.join(', ')}`, value));
  }
  return value as InitType;
}

/** Draws a tensor of `shape` with the named initialiser. */
export function initialize(initType: InitType, shape: number[]): tf.Tensor {
  switch (initType) {
    case 'kaiming_uniform':
      return kaimingUniform(shape);
    case 'kaiming_normal':
      return kaimingNormal(shape);
    case 'xavier_uniform':
      return xavierUniform(shape);
    case 'xavier_normal':
      return xavierNormal(shape);
  }
}
