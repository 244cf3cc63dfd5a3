import { MieShapeError, Module, tf } from '@mie/core';

/** Gradients (or any per-parameter tensors) by parameter name, e.g. `hiddenLayers.0.weight`. */
export type NamedGradients = Record<string, tf.Tensor>;

/** Parameters by name: a module (its trainable parameters), or `[name, variable]` pairs. */
export type NamedParameterSource = Module | ReadonlyArray<readonly [string, tf.Variable]>;

/** The trainable `[name, variable]` pairs of a module (dotted paths), or the given pairs. */
export function namedTrainableParameters(source: NamedParameterSource): Array<[string, tf.Variable]> {
  const pairs = source instanceof Module ? source.namedParameters() : source.map(([name, variable]) => [name, variable] as [string, tf.Variable]);
  return pairs.filter(([, variable]) => variable.trainable);
}

/**
 * Runs `loss` (a function returning a scalar tensor) and returns its value with the gradient of every trainable parameter of `source`
 * that the loss depends on, named by parameter path (parameters the loss does not reach are
 * absent, as PyTorch leaves their `.grad` at `None`). The caller owns and disposes every tensor.
 */
export function valueAndGradients(source: NamedParameterSource, loss: () => tf.Tensor): { value: tf.Scalar; grads: NamedGradients } {
  const pairs = namedTrainableParameters(source);
  if (pairs.length === 0) throw new MieShapeError('valueAndGradients: there are no trainable parameters to differentiate.');
  const { value, grads } = tf.variableGrads(() => {
    const result = loss();
    if (!(result instanceof tf.Tensor) || result.rank !== 0) {
      throw new MieShapeError(`valueAndGradients: the loss must be a scalar tensor. Received: shape [${(result as tf.Tensor)?.shape}].`);
    }
    return result as tf.Scalar;
  }, pairs.map(([, variable]) => variable));
  const named: NamedGradients = {};
  for (const [name, variable] of pairs) {
    const grad = grads[variable.name];
    if (grad !== undefined) named[name] = grad;
  }
  return { value, grads: named };
}
