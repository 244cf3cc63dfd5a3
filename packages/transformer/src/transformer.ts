/**
 * The design's `Transformer`: an encoder-only model over continuous features (Vaswani et al. 2017,
 * section 3.1, without token embeddings). An optional input projection to `dModel`, positions, a
 * stack of encoder layers, a final layer norm in pre-norm, and an optional output projection.
 *
 * Legend: b batch, t sequence length, i inputDim, d dModel, o outputDim.
 */
import {
  BaseModel,
  MieShapeError,
  OUTPUT_FIELD,
  checkAllocation,
  checkCallOptions,
  checkFeatures,
  checkPositiveInteger,
  dropout,
  errorMessage,
  float32Bytes,
  option,
  registerModel,
  resolveOptions,
  tf,
  type ForwardMethods,
} from '@mie/core';
import { ATTENTION_MASK_OPTIONS, type AttentionMaskOptions } from '@mie/attention';
import { LayerNorm, LinearLayer } from '@mie/layers';
import { PositionalEncoding, SinusoidalEncoding, type RelativePositionBias } from '@mie/positional';
import { relativeBias, stackRelativeBias } from './relative-bias';
import { STACK_MODEL_OPTIONS, attentionPositions, checkHeads, type ModelOptions } from './model-options';
import { layerOptions } from './stack-options';
import { TransformerEncoderLayer } from './transformer-encoder-layer';

const NAME = 'Transformer';

/** Options of {@link Transformer} (the design's `Transformer` arguments in camelCase): the shared {@link ModelOptions} and these. */
export interface TransformerOptions extends ModelOptions {
  /** Encoder layers. Default 6. */
  numLayers?: number;
  /** Longest sequence the positions cover (not checked with `'none'`). Default 5000. */
  maxSeqLength?: number;
  /** Width of the input features. Default `dModel`; when it differs, `inputProjection` maps to `dModel`. */
  inputDim?: number;
  /** When set, `outputProjection` maps the output to this width; default `null`: outputs are `[b, t, dModel]`. */
  outputDim?: number | null;
}

/** The resolved options of a {@link Transformer}: every field set (`outputDim` may be `null`). */
export interface TransformerConfig extends Required<Omit<TransformerOptions, 'outputDim'>> {
  outputDim: number | null;
}

/** Call options of {@link Transformer.forward}: `mask`, `keyPaddingMask` (1 = real position) and `causal`. */
export type TransformerCallOptions = AttentionMaskOptions;

/** Output of {@link Transformer.forwardWithAttention}. */
export interface TransformerOutput {
  /** `[b, t, outputDim ?? dModel]` */
  output: tf.Tensor;
  /** One `[b, heads, t, t]` per layer. */
  selfAttention: tf.Tensor[];
}

// The shared option table (model-options.ts), in the order the config keeps them, plus the
// feature widths of this model.
const TRANSFORMER_OPTIONS = {
  ...STACK_MODEL_OPTIONS,
  inputDim: option.positiveInteger((resolved) => resolved['dModel'] as number),
  outputDim: option.custom((module, name, value): number | null => (value === null ? null : checkPositiveInteger(module, name, value)), null),
} as const;

/** Checks and completes the options. */
function resolveTransformerOptions(options: TransformerOptions): TransformerConfig {
  const config = resolveOptions(NAME, options, TRANSFORMER_OPTIONS);
  checkHeads(NAME, { ...config, attentionPositions: attentionPositions(config.positionalEncoding) });
  return config;
}

/**
 * The encoder-only Transformer over continuous features (Vaswani et al. 2017): the design's
 * `BaseModel --> Transformer`.
 *
 *   h = inputProjection(x)              (only when inputDim != dModel)
 *   h = dropout(h + PE[0 : t])          (sinusoidal / learned; rotary and ALiBi act inside attention)
 *   h = layers.N(h)                     (TransformerEncoderLayer, post- or pre-norm)
 *   h = norm(h)                         (pre-norm only)
 *   y = outputProjection(h)             (only with outputDim)
 *
 * `forward(x [b, t, inputDim] float32, { mask, keyPaddingMask, causal })` -> `[b, t, outputDim ?? dModel]`.
 * The inputs are features, not token embeddings: they are not scaled by `sqrt(dModel)`.
 * State: `inputProjection`, `positionalEncoding.weight` (learned only), `layers.N`, `norm`,
 * `outputProjection`: with the PyTorch names of `torch-state-dict.ts`, an `nn.Linear`,
 * `nn.TransformerEncoder`'s `layers.N.*` and `norm.*`, and an `nn.Linear`.
 */
export class Transformer extends BaseModel<TransformerConfig> {
  static override readonly forwardMethods: ForwardMethods = { forward: null, forwardWithAttention: OUTPUT_FIELD };
  readonly config: TransformerConfig;
  /** `[dModel, inputDim]`, or `null` when `inputDim` is `dModel`. */
  readonly inputProjection: LinearLayer | null;
  /** Sinusoidal or learned positions (with the first dropout), or `null` for rotary, ALiBi and none. */
  readonly positionalEncoding: PositionalEncoding | null;
  /** T5's relative position bias (`positionalEncoding: 't5'`, bidirectional), shared by every layer; else null. */
  readonly relativePositionBias: RelativePositionBias | null;
  readonly layers: TransformerEncoderLayer[];
  /** The final layer norm of a pre-norm stack; `null` in post-norm. */
  readonly norm: LayerNorm | null;
  /** `[outputDim, dModel]`, or `null` without `outputDim`. */
  readonly outputProjection: LinearLayer | null;

  constructor(options: TransformerOptions = {}) {
    super();
    this.config = resolveTransformerOptions(options);
    const { dModel, numLayers, dropout: rate, maxSeqLength, positionalEncoding, inputDim, outputDim, normFirst, layerNormEps } = this.config;
    this.inputProjection = inputDim !== dModel ? new LinearLayer({ inFeatures: inputDim, outFeatures: dModel, initType: 'xavier_uniform' }) : null;
    this.positionalEncoding =
      positionalEncoding === 'sinusoidal'
        ? new SinusoidalEncoding({ dModel, maxSeqLength, dropout: rate })
        : positionalEncoding === 'learned'
          ? new PositionalEncoding({ dModel, maxSeqLength, dropout: rate, encodingType: 'learned' })
          : null;
    // Rotary and ALiBi positions live inside each layer's self-attention; T5's bias is shared.
    this.relativePositionBias = stackRelativeBias(positionalEncoding, this.config.numHeads, true);
    this.layers = Array.from({ length: numLayers }, () => new TransformerEncoderLayer(layerOptions(this.config)));
    this.norm = normFirst ? new LayerNorm({ normalizedShape: dModel, eps: layerNormEps }) : null;
    this.outputProjection = outputDim !== null ? new LinearLayer({ inFeatures: dModel, outFeatures: outputDim, initType: 'xavier_uniform' }) : null;
  }

  /** `[b, t, inputDim]` -> `[b, t, outputDim ?? dModel]`. */
  forward(x: tf.Tensor, options?: TransformerCallOptions): tf.Tensor {
    const { output, selfAttention } = this.forwardWithAttention(x, options);
    tf.dispose(selfAttention);
    return output;
  }

  /** `forward`, also returning every layer's self-attention weights `[b, heads, t, t]`. */
  forwardWithAttention(x: tf.Tensor, callOptions?: TransformerCallOptions): TransformerOutput {
    const options = checkCallOptions(`${NAME}.forward`, callOptions, ATTENTION_MASK_OPTIONS);
    this.#checkInput(x);
    return tf.tidy(() => {
      let h = this.inputProjection ? this.inputProjection.forward(x) : x; // [b, t, i] -> [b, t, d]
      h = this.positionalEncoding ? this.positionalEncoding.forward(h) : dropout(h, this.config.dropout, this.training);
      const selfAttention: tf.Tensor[] = [];
      const bias = relativeBias(this.relativePositionBias, x.shape[1] as number, 0);
      for (const layer of this.layers) {
        const result = layer.forwardWithAttention(h, { ...options, bias });
        h = result.output;
        selfAttention.push(result.selfAttention);
      }
      if (this.norm) h = this.norm.forward(h);
      return { output: this.outputProjection ? this.outputProjection.forward(h) : h, selfAttention }; // [b, t, d] -> [b, t, o]
    });
  }

  /** Shape, length and memory of `x`, before any compute. */
  #checkInput(x: tf.Tensor): void {
    const { inputDim, maxSeqLength, positionalEncoding, numHeads, dModel, dFf, numLayers } = this.config;
    checkFeatures(NAME, 'input x', x, inputDim, 'inputDim', 3);
    const [batch, length] = x.shape as [number, number, number];
    if (length < 1) throw new MieShapeError(errorMessage(NAME, 'input x', 'must hold at least one position ([batch, seq >= 1, inputDim])', x));
    if (positionalEncoding !== 'none' && length > maxSeqLength) {
      throw new MieShapeError(
        errorMessage(NAME, 'input x', `has ${length} positions, but maxSeqLength is ${maxSeqLength} (construct the model with a larger maxSeqLength)`, x),
      );
    }
    // Per layer: the attention scores (a few live copies), the feed-forward hidden and the residual
    // stream; a training step keeps every layer's for the backward pass.
    const perLayer = 4 * float32Bytes(batch, numHeads, length, length) + 2 * float32Bytes(batch, length, dFf) + 8 * float32Bytes(batch, length, dModel);
    checkAllocation(NAME, `a forward of x [${x.shape.join(', ')}]`, this.training ? numLayers * perLayer : perLayer);
  }
}
// Named explicitly: bundlers rename classes and minifiers mangle them.
registerModel(Transformer, 'Transformer');
