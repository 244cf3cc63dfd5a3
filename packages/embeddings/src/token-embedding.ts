/**
 * Token embedding of the Transformer (Vaswani et al. 2017, section 3.4): a learned table
 * `weight [vocabSize, dModel]` looked up by token id and scaled by sqrt(dModel).
 *
 * Shapes: b batch, t sequence length, d dModel, V vocabSize.
 */
import { float32Bytes, checkAllocation, MieConfigError, MieShapeError, Module, describeValue, errorMessage, hostValues, parameter, tf, xavierUniform } from '@mie/core';

const MODULE = 'TokenEmbedding';

/** Constructor options of {@link TokenEmbedding} (the design's `vocab_size`, `d_model`, `padding_idx`). */
export interface TokenEmbeddingOptions {
  /** Number of rows of the table: token ids must lie in `[0, vocabSize)`. A positive integer. */
  vocabSize: number;
  /** Width of each embedding vector; outputs are scaled by `sqrt(dModel)`. A positive integer. */
  dModel: number;
  /**
   * Id of the padding token, as `torch.nn.Embedding`'s `padding_idx`: its row starts at zero and
   * never receives a gradient, so training never changes it. A negative value counts from the end
   * (`-1` is `vocabSize - 1`). Default `null` (no padding row).
   */
  paddingIdx?: number | null;
}

/** The resolved configuration kept by {@link TokenEmbedding}: `paddingIdx` is `null` or in `[0, vocabSize)`. */
export interface TokenEmbeddingConfig {
  /** Number of rows of the table. */
  readonly vocabSize: number;
  /** Width of each embedding vector. */
  readonly dModel: number;
  /** The padding row, made non-negative (PyTorch stores it the same way), or `null`. */
  readonly paddingIdx: number | null;
}

function checkPositiveInteger(name: string, value: unknown): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
    throw new MieConfigError(errorMessage(MODULE, `option "${name}"`, 'must be a positive integer', value));
  }
  return value;
}

/** Validates the options and makes `paddingIdx` non-negative, as `torch.nn.Embedding` does. */
function resolveConfig(options: TokenEmbeddingOptions): TokenEmbeddingConfig {
  if (options === null || typeof options !== 'object') {
    throw new MieConfigError(errorMessage(MODULE, 'options', 'must be an object { vocabSize, dModel, paddingIdx? }', options));
  }
  const { vocabSize, dModel, paddingIdx = null } = options;
  checkPositiveInteger('vocabSize', vocabSize);
  checkPositiveInteger('dModel', dModel);
  if (paddingIdx !== null) {
    if (typeof paddingIdx !== 'number' || !Number.isInteger(paddingIdx) || paddingIdx < -vocabSize || paddingIdx >= vocabSize) {
      throw new MieConfigError(
        errorMessage(MODULE, 'option "paddingIdx"', `must be null or an integer in [${-vocabSize}, ${vocabSize}) (vocabSize ${vocabSize})`, paddingIdx),
      );
    }
  }
  return { vocabSize, dModel, paddingIdx: paddingIdx !== null && paddingIdx < 0 ? vocabSize + paddingIdx : paddingIdx };
}

/**
 * Scales rows by `scale`, with a gradient that is zero wherever `keep` is 0: the rows of padding
 * tokens then send nothing back to the table, while their forward value stays whatever the table
 * holds (PyTorch's `padding_idx` semantics, also for a pretrained non-zero padding row).
 * `rows [b, t, d]`, `keep [b, t, 1]` (1 = real token, 0 = padding).
 */
function scaleMaskingGradient(scale: number): (rows: tf.Tensor, keep: tf.Tensor) => tf.Tensor {
  return tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const [rows, keep, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
    save([keep]);
    return {
      value: tf.mul(rows, scale),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(tf.mul(dy, saved[0]), scale), tf.zerosLike(saved[0])],
    };
  });
}

/**
 * Token embedding (Vaswani et al. 2017, "Attention Is All You Need", section 3.4):
 * `forward(ids) = weight[ids] * sqrt(dModel)`, with `weight [vocabSize, dModel]` drawn from
 * Xavier uniform (`torch.nn.init.xavier_uniform_`, bound `sqrt(6 / (vocabSize + dModel))`).
 *
 * ```ts
 * const embedding = new TokenEmbedding({ vocabSize: 1000, dModel: 64, paddingIdx: 0 });
 * const x = embedding.forward(tf.tensor2d([[5, 7, 0]], [1, 3], 'int32')); // [1, 3, 64]
 * const logits = embedding.attend(x); // tied output projection: [1, 3, 1000]
 * ```
 */
export class TokenEmbedding extends Module {
  /** The resolved options: `new TokenEmbedding(e.config)` rebuilds the same module. */
  readonly config: TokenEmbeddingConfig;
  /** The embedding table `[vocabSize, dModel]` (state name `weight`, as PyTorch's). */
  weight: tf.Variable;
  readonly #scale: number;
  readonly #scaleMaskingGradient: ((rows: tf.Tensor, keep: tf.Tensor) => tf.Tensor) | null;

  /** Builds the table; throws `MieConfigError` for an invalid option. The caller's object is not changed. */
  constructor(options: TokenEmbeddingOptions) {
    super();
    this.config = Object.freeze(resolveConfig(options));
    const { vocabSize, dModel, paddingIdx } = this.config;
    this.#scale = Math.sqrt(dModel);
    this.#scaleMaskingGradient = paddingIdx === null ? null : scaleMaskingGradient(this.#scale);
    this.weight = parameter([vocabSize, dModel], (shape) => {
      const table = xavierUniform(shape);
      if (paddingIdx === null) return table;
      // Zero the padding row, as nn.Embedding's reset_parameters does (+0, not the -0 of a multiply).
      const isPaddingRow = tf.reshape(tf.equal(tf.range(0, vocabSize, 1, 'int32'), tf.scalar(paddingIdx, 'int32')), [vocabSize, 1]); // [V] -> [V, 1]
      return tf.where(tf.broadcastTo(isPaddingRow, [vocabSize, dModel]), tf.zerosLike(table), table);
    });
  }

  /**
   * Looks up `ids` (int32 `[batch, seq]`) and returns `weight[ids] * sqrt(dModel)`, `[batch, seq, dModel]`.
   *
   * Throws `MieShapeError` for a non-tensor, a rank other than 2, a dtype other than int32, or an
   * id outside `[0, vocabSize)` (naming the first bad value and its position): tfjs's `gather`
   * would return zeros or garbage there. The range check runs on the ids' values where they are in
   * host memory (cpu, wasm, tensorflow; on webgl and webgpu, ids built from JavaScript values and
   * not yet used by an op). Ids that exist only on the GPU (computed there, as in generation) are
   * not read back: an out-of-range id gives a row of NaN instead, computed in the kernel.
   */
  forward(ids: tf.Tensor): tf.Tensor {
    const checked = checkIds(ids, this.config.vocabSize);
    const { vocabSize, dModel, paddingIdx } = this.config;
    checkAllocation(MODULE, `embeddings [${ids.shape.join(', ')}, ${dModel}]`, 2 * float32Bytes(ids.size, dModel));
    return tf.tidy(() => {
      let rows: tf.Tensor;
      if (checked) {
        rows = tf.gather(this.weight, ids); // [b, t] -> [b, t, d]
      } else {
        // Ids on the GPU: gather clamped ids and turn the rows of out-of-range ones into NaN.
        const valid = tf.logicalAnd(tf.greaterEqual(ids, tf.scalar(0, 'int32')), tf.less(ids, tf.scalar(vocabSize, 'int32'))); // [b, t]
        const gathered = tf.gather(this.weight, tf.minimum(tf.maximum(ids, tf.scalar(0, 'int32')), tf.scalar(vocabSize - 1, 'int32'))); // [b, t] -> [b, t, d]
        rows = tf.where(tf.expandDims(valid, -1), gathered, tf.fill(gathered.shape, Number.NaN)); // [b, t, 1] broadcast over d
      }
      if (paddingIdx === null || this.#scaleMaskingGradient === null) return tf.mul(rows, this.#scale);
      const keep = tf.expandDims(tf.cast(tf.notEqual(ids, tf.scalar(paddingIdx, 'int32')), 'float32'), -1); // [b, t] -> [b, t, 1]
      return this.#scaleMaskingGradient(rows, keep);
    });
  }

  /**
   * Uses the table as an output projection, for tied input/output embeddings (Press & Wolf 2017;
   * Flax's `Embed.attend`): `x [batch, seq, dModel]` -> logits `x @ weight^T`, `[batch, seq, vocabSize]`.
   * No `sqrt(dModel)` scale and no bias are applied. Gradients flow into `weight` from both uses.
   * Throws `MieShapeError` unless `x` is a float32 rank-3 tensor whose last dimension is `dModel`.
   */
  attend(x: tf.Tensor): tf.Tensor {
    const { vocabSize, dModel } = this.config;
    if (!(x instanceof tf.Tensor) || x.isDisposed || x.rank !== 3 || x.shape[2] !== dModel || x.dtype !== 'float32') {
      throw new MieShapeError(
        errorMessage(MODULE, 'attend(x): x', `must be a live float32 tensor [batch, seq, dModel = ${dModel}]`, x),
      );
    }
    const [rowsOf, seqOf] = x.shape as [number, number, number];
    checkAllocation(MODULE, `attend(x): logits [${rowsOf}, ${seqOf}, ${vocabSize}]`, float32Bytes(rowsOf, seqOf, vocabSize));
    return tf.tidy(() => {
      const [batch, seq] = x.shape;
      const flat = tf.reshape(x, [batch * seq, dModel]); // [b, t, d] -> [b*t, d]: a 2-D matmul is much faster on wasm
      const logits = tf.matMul(flat, this.weight, false, true); // [b*t, d] x [V, d]^T -> [b*t, V]
      return tf.reshape(logits, [batch, seq, vocabSize]); // [b*t, V] -> [b, t, V]
    });
  }
}

/**
 * Throws `MieShapeError` unless `ids` is a live int32 `[batch, seq]` tensor of ids in
 * `[0, vocabSize)`. Returns whether the range was checked: false for ids held only on a GPU,
 * which are not read back (the caller guards them in the kernel).
 */
function checkIds(ids: unknown, vocabSize: number): boolean {
  const expected = `must be a live int32 tensor of token ids [batch, seq] in [0, ${vocabSize})`;
  if (!(ids instanceof tf.Tensor) || ids.isDisposed) {
    throw new MieShapeError(errorMessage(MODULE, 'ids', expected, ids));
  }
  if (ids.rank !== 2) {
    throw new MieShapeError(`${MODULE}: ids ${expected}. Received: ${describeValue(ids)} (rank ${ids.rank}).`);
  }
  if (ids.dtype !== 'int32') {
    throw new MieShapeError(
      `${MODULE}: ids ${expected}. Received: ${describeValue(ids)} (convert with tf.cast(ids, 'int32') if the values are whole numbers).`,
    );
  }
  if (ids.size === 0) return true;
  const values = hostValues(ids);
  if (values === null) return false;
  let first = -1;
  let count = 0;
  for (let i = 0; i < values.length; i++) {
    if (values[i] < 0 || values[i] >= vocabSize) {
      if (first < 0) first = i;
      count++;
    }
  }
  if (first < 0) return true;
  const seq = ids.shape[1];
  const more = count > 1 ? ` (${count} ids out of range in all)` : '';
  throw new MieShapeError(
    `${MODULE}: ids ${expected} (vocabSize ${vocabSize}). Received: ${values[first]} at position [${Math.floor(first / seq)}, ${first % seq}]${more}.`,
  );
}
