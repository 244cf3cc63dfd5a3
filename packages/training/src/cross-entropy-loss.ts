import { MieConfigError, MieShapeError, checkOptions, describeValue, errorMessage, fusedKernelAvailable, hostValues, tf } from '@mie/core';
import { CROSS_ENTROPY_KERNEL, fusedCrossEntropy, fusedCrossEntropyApplies } from './fused-cross-entropy';

/** How {@link crossEntropyLoss} reduces the per-target losses. */
export type LossReduction = 'mean' | 'sum' | 'none';

/** Options of {@link crossEntropyLoss}. */
export interface CrossEntropyLossOptions {
  /** Targets equal to this id contribute nothing, to the loss or to the mean's count. Default `-100` (PyTorch's). */
  ignoreIndex?: number;
  /**
   * Label smoothing `eps` in [0, 1]: the target distribution is `(1 - eps)` on the target class
   * plus `eps / C` on every class (Szegedy et al. 2016, as PyTorch). Default `0`.
   */
  labelSmoothing?: number;
  /**
   * `'mean'` (default): the sum over non-ignored targets divided by their count (NaN when every
   * target is ignored, as in PyTorch); `'sum'`; `'none'`: one loss per target, shape `targets.shape`,
   * 0 at ignored targets.
   */
  reduction?: LossReduction;
}

const OPTIONS = ['ignoreIndex', 'labelSmoothing', 'reduction'] as const;
const NAME = 'crossEntropyLoss';

/**
 * Cross-entropy between `logits [..., C]` (float32) and class ids `targets [...]` (int32), with
 * the semantics of `torch.nn.functional.cross_entropy(logits, targets, ignore_index,
 * label_smoothing, reduction)` (classes last here, second in PyTorch). Computed from
 * each row's log-sum-exp (one fused kernel forward and one backward on cpu and wasm, the
 * `logSoftmax` composition elsewhere), so it is stable for large logits, and differentiable with respect to `logits`.
 * A target outside `[0, C)` other than `ignoreIndex` is a `MieShapeError` naming it, where the
 * targets' values are in host memory (always on cpu, wasm and tensorflow; on webgl and webgpu,
 * targets built from JavaScript values and not yet used by an op); targets held only on a GPU are
 * not read back, and an out-of-range one makes its loss NaN instead.
 *
 * Per target `i` with class `y`: `loss_i = -(1 - eps) log p_i[y] - (eps / C) sum_c log p_i[c]`.
 */
export function crossEntropyLoss(logits: tf.Tensor, targets: tf.Tensor, options: CrossEntropyLossOptions = {}): tf.Tensor {
  const { ignoreIndex = -100, labelSmoothing = 0, reduction = 'mean' } = checkOptions(NAME, options, OPTIONS);
  if (typeof ignoreIndex !== 'number' || !Number.isSafeInteger(ignoreIndex)) {
    throw new MieConfigError(errorMessage(NAME, 'option "ignoreIndex"', 'must be an integer', ignoreIndex));
  }
  if (typeof labelSmoothing !== 'number' || !(labelSmoothing >= 0 && labelSmoothing <= 1)) {
    throw new MieConfigError(errorMessage(NAME, 'option "labelSmoothing"', 'must be a number in [0, 1]', labelSmoothing));
  }
  if (reduction !== 'mean' && reduction !== 'sum' && reduction !== 'none') {
    throw new MieConfigError(errorMessage(NAME, 'option "reduction"', 'must be "mean", "sum" or "none"', reduction));
  }
  if (!(logits instanceof tf.Tensor) || logits.isDisposed || logits.dtype !== 'float32' || logits.rank < 1) {
    throw new MieShapeError(errorMessage(NAME, 'logits', 'must be a live float32 tensor [..., numClasses]', logits));
  }
  if (!(targets instanceof tf.Tensor) || targets.isDisposed || targets.dtype !== 'int32') {
    throw new MieShapeError(errorMessage(NAME, 'targets', 'must be a live int32 tensor of class ids', targets));
  }
  const numClasses = logits.shape[logits.rank - 1];
  const batchShape = logits.shape.slice(0, -1);
  if (!tf.util.arraysEqual(targets.shape, batchShape)) {
    throw new MieShapeError(
      `${NAME}: targets must have shape [${batchShape.join(', ')}] (logits' shape without the class dimension). Received: ${describeValue(targets)}.`,
    );
  }
  const ids = hostValues(targets);
  for (let i = 0; ids !== null && i < ids.length; i++) {
    const id = ids[i];
    if (id !== ignoreIndex && (id < 0 || id >= numClasses)) {
      throw new MieShapeError(
        `${NAME}: targets must be class ids in [0, ${numClasses}) or ignoreIndex (${ignoreIndex}). Received: ${id} at flat position ${i}.`,
      );
    }
  }
  if (ids !== null && fusedCrossEntropyApplies(logits) && fusedKernelAvailable(CROSS_ENTROPY_KERNEL)) {
    // One kernel forward and one backward on cpu and wasm (fused-cross-entropy.ts).
    let kept = 0;
    for (let i = 0; i < ids.length; i++) if (ids[i] !== ignoreIndex) kept++;
    return tf.tidy(() => {
      const perTarget = fusedCrossEntropy(logits, targets, { ignoreIndex, labelSmoothing });
      if (reduction === 'none') return perTarget;
      const total = tf.sum(perTarget);
      return reduction === 'sum' ? total : tf.div(total, tf.scalar(kept));
    });
  }
  return tf.tidy(() => {
    const logProbabilities = tf.logSoftmax(logits, -1); // [..., C]
    const kept = tf.notEqual(targets, tf.scalar(ignoreIndex, 'int32')); // [...]
    const safeTargets = tf.where(kept, targets, tf.zerosLike(targets));
    // The smoothed target distribution: (1 - eps) one-hot + eps / C everywhere.
    let targetDistribution = tf.mul(tf.oneHot(safeTargets, numClasses), 1 - labelSmoothing);
    if (labelSmoothing > 0) targetDistribution = tf.add(targetDistribution, labelSmoothing / numClasses);
    let perTarget = tf.neg(tf.sum(tf.mul(logProbabilities, targetDistribution), -1)); // [...]
    if (ids === null) {
      // Unchecked targets (on a GPU): an out-of-range one has a NaN loss.
      const inRange = tf.logicalAnd(tf.greaterEqual(targets, 0), tf.less(targets, numClasses));
      perTarget = tf.where(tf.logicalOr(inRange, tf.logicalNot(kept)), perTarget, tf.scalar(Number.NaN));
    }
    const masked = tf.mul(perTarget, tf.cast(kept, 'float32'));
    if (reduction === 'none') return masked;
    const total = tf.sum(masked);
    if (reduction === 'sum') return total;
    return tf.div(total, tf.sum(tf.cast(kept, 'float32')));
  });
}
