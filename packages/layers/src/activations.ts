/**
 * Element-wise activations by name, each matching its `torch.nn.functional` namesake.
 * `gelu` is the exact erf form (PyTorch's default `approximate='none'`, Hendrycks & Gimpel 2016);
 * tfjs has no GELU op, so it is composed from `tf.erf`, whose gradient tfjs provides.
 */
import { MieConfigError, errorMessage, tf } from '@mie/core';

/** The activation names accepted by `activation` options. */
export const ACTIVATIONS = ['relu', 'gelu', 'tanh', 'sigmoid', 'silu'] as const;
/** One of {@link ACTIVATIONS}. */
export type ActivationName = (typeof ACTIVATIONS)[number];
/** An element-wise function of a float tensor. */
export type ActivationFunction = (x: tf.Tensor) => tf.Tensor;

/** `max(x, 0)`, as `torch.nn.functional.relu`. */
export function relu(x: tf.Tensor): tf.Tensor {
  return tf.relu(x);
}

/** `0.5 x (1 + erf(x / sqrt(2)))`: exact GELU, as `torch.nn.functional.gelu(x, approximate='none')`. */
export function gelu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1)));
}

/** Hyperbolic tangent, as `torch.tanh`. */
export function tanh(x: tf.Tensor): tf.Tensor {
  return tf.tanh(x);
}

/** `1 / (1 + exp(-x))`, as `torch.sigmoid`. */
export function sigmoid(x: tf.Tensor): tf.Tensor {
  return tf.sigmoid(x);
}

/** `x * sigmoid(x)` (SiLU, also called swish), as `torch.nn.functional.silu`. */
export function silu(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.mul(x, tf.sigmoid(x)));
}

const FUNCTIONS: Record<ActivationName, ActivationFunction> = { relu, gelu, tanh, sigmoid, silu };

/**
 * Checks an `activation` option: one of {@link ACTIVATIONS}, else a `MieConfigError` naming
 * `moduleName` and listing the valid names.
 */
export function checkActivation(moduleName: string, name: unknown): ActivationName {
  if (typeof name !== 'string' || !(ACTIVATIONS as readonly string[]).includes(name)) {
    throw new MieConfigError(errorMessage(moduleName, 'option "activation"', `must be one of ${ACTIVATIONS.join(', ')}`, name));
  }
  return name as ActivationName;
}

/**
 * The activation function called `name`. `moduleName` is the module that asked for it, named in
 * the `MieConfigError` thrown for an unknown name.
 */
export function getActivation(name: ActivationName, moduleName = 'getActivation'): ActivationFunction {
  return FUNCTIONS[checkActivation(moduleName, name)];
}
