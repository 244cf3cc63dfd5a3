/**
 * A decoder-only language model (GPT, Radford et al. 2018/2019): token embedding, positions, a
 * stack of decoder blocks without cross-attention (causal self-attention and a feed-forward
 * network), a final layer norm in pre-norm, and an output projection tied to the embedding by
 * default (Press & Wolf 2017). Generates with the same `generate` / `generateStream` as the
 * seq2seq model (greedy, beam, sampling, penalties, caches, abort), continuing a prompt.
 *
 * Legend: b batch, p prompt length, t length, d dModel, V vocabulary.
 */
import {
  BaseModel,
  MieConfigError,
  MieShapeError,
  OUTPUT_FIELD,
  checkCallOptions,
  errorMessage,
  float32Bytes,
  option,
  registerModel,
  resolveOptions,
  tf,
  type ForwardMethods,
} from '@mie/core';
import { KeyValueCache } from '@mie/attention';
import { TokenEmbedding } from '@mie/embeddings';
import { LayerNorm, LinearLayer } from '@mie/layers';
import { PositionalEncoding, type RelativePositionBias } from '@mie/positional';
import { relativeBias, stackRelativeBias } from './relative-bias';
import type { DecodingSpec, DecodingStartOptions, DecodingState } from './decoding';
import { embedWithPositions } from './embed-positions';
import { generate as generateSequences, generateStream as streamSequences, type GenerateOptions, type GenerationOutput, type GenerationStreamStep } from './generation';
import { STACK_MODEL_OPTIONS, attentionPositions, checkHeads, type ModelOptions } from './model-options';
import { checkStackMemory } from './stack-memory';
import { layerOptions } from './stack-options';
import { TransformerDecoderLayer } from './transformer-decoder-layer';

const NAME = 'DecoderOnlyTransformer';

/** Options of {@link DecoderOnlyTransformer}: the shared {@link ModelOptions} and these. */
export interface DecoderOnlyTransformerOptions extends ModelOptions {
  /** Token vocabulary size. */
  vocabSize: number;
  /** Decoder blocks. Default 6. */
  numLayers?: number;
  /** Padding token: padding masks are derived from it and its embedding row stays zero. Default null. */
  padTokenId?: number | null;
  /** The output projection is the embedding matrix (no bias). Default true. */
  tieEmbeddings?: boolean;
  /** Token `generate` prepends to every prompt (unless its options say otherwise). Default null. */
  bosTokenId?: number | null;
  /** Token that ends a generated sequence; `generate`'s default. Default null. */
  eosTokenId?: number | null;
}

export type DecoderOnlyTransformerConfig = Required<DecoderOnlyTransformerOptions>;

const OPTIONS = {
  vocabSize: option.positiveInteger('required'),
  ...STACK_MODEL_OPTIONS,
  padTokenId: option.nullableInteger(null),
  tieEmbeddings: option.boolean(true),
  bosTokenId: option.nullableInteger(null),
  eosTokenId: option.nullableInteger(null),
} as const;

/** Call options of {@link DecoderOnlyTransformer.forward}. */
export interface DecoderOnlyCallOptions {
  /** `[b, t]` (with caches: `[b, cached + t]`), 1 = real token. Derived from `padTokenId` when not given (and no caches). */
  keyPaddingMask?: tf.Tensor;
  /** One self-attention cache per block (incremental decoding); positions continue from their length. */
  caches?: KeyValueCache[];
}

const CALL_OPTIONS = ['keyPaddingMask', 'caches'] as const;

/** Output of {@link DecoderOnlyTransformer.forwardWithAttention}. */
export interface DecoderOnlyOutput {
  /** Logits `[b, t, V]`. */
  output: tf.Tensor;
  /** Per block, `[b, heads, t, t (+ cached)]`. */
  selfAttention: tf.Tensor[];
}

/**
 * `forward(ids [b, t] int32, { keyPaddingMask, caches })` -> logits `[b, t, vocabSize]`, always
 * causal. `generate(promptIds, options)` continues prompts (see {@link GenerateOptions}); its
 * `sequences` hold the generated tokens only, without the prompt.
 *
 * State: `embedding`, `positionalEncoding` (learned only), `layers.N` (`selfAttn`, `linear1`,
 * `linear2`, `norm1`, `norm2`), `norm` (pre-norm only), `outputProjection` (untied only).
 */
export class DecoderOnlyTransformer extends BaseModel<DecoderOnlyTransformerConfig> {
  static override readonly forwardMethods: ForwardMethods = { forward: null, forwardWithAttention: OUTPUT_FIELD };
  readonly config: DecoderOnlyTransformerConfig;
  readonly embedding: TokenEmbedding;
  readonly positionalEncoding: PositionalEncoding | null;
  /** T5's relative position bias (`positionalEncoding: 't5'`, causal buckets), shared by every block; else null. */
  readonly relativePositionBias: RelativePositionBias | null;
  readonly layers: TransformerDecoderLayer[];
  readonly norm: LayerNorm | null;
  readonly outputProjection: LinearLayer | null;

  constructor(options: DecoderOnlyTransformerOptions) {
    super();
    const config = resolveOptions(NAME, options, OPTIONS);
    const { vocabSize, padTokenId, bosTokenId, eosTokenId, dModel, maxSeqLength, dropout, positionalEncoding, normFirst, layerNormEps, numLayers } = config;
    for (const [key, id] of [['padTokenId', padTokenId], ['bosTokenId', bosTokenId], ['eosTokenId', eosTokenId]] as const) {
      if (id !== null && id >= vocabSize) throw new MieConfigError(errorMessage(NAME, `option "${key}"`, `must be null or a token id in [0, ${vocabSize})`, id));
    }
    checkHeads(NAME, { ...config, attentionPositions: attentionPositions(positionalEncoding) });
    this.config = config;
    this.embedding = new TokenEmbedding({ vocabSize, dModel, paddingIdx: padTokenId });
    this.positionalEncoding =
      positionalEncoding === 'sinusoidal' || positionalEncoding === 'learned'
        ? new PositionalEncoding({ dModel, maxSeqLength, dropout, encodingType: positionalEncoding })
        : null;
    this.relativePositionBias = stackRelativeBias(positionalEncoding, config.numHeads, false);
    this.layers = Array.from({ length: numLayers }, () => new TransformerDecoderLayer({ ...layerOptions(config), crossAttention: false }));
    this.norm = normFirst ? new LayerNorm({ normalizedShape: dModel, eps: layerNormEps }) : null;
    this.outputProjection = config.tieEmbeddings ? null : new LinearLayer({ inFeatures: dModel, outFeatures: vocabSize, initType: 'xavier_uniform' });
  }

  forward(ids: tf.Tensor, options?: DecoderOnlyCallOptions): tf.Tensor {
    const { output, selfAttention } = this.forwardWithAttention(ids, options);
    tf.dispose(selfAttention);
    return output;
  }

  /** `forward`, also returning every block's self-attention weights. */
  forwardWithAttention(ids: tf.Tensor, callOptions?: DecoderOnlyCallOptions): DecoderOnlyOutput {
    const { keyPaddingMask, caches } = checkCallOptions(`${NAME}.forward`, callOptions, CALL_OPTIONS);
    const numLayers = this.layers.length;
    if (caches !== undefined && (!Array.isArray(caches) || caches.length !== numLayers || !caches.every((c) => c instanceof KeyValueCache))) {
      throw new MieShapeError(`${NAME}: caches must hold one KeyValueCache per block (${numLayers}). Received: ${Array.isArray(caches) ? `${caches.length} entries` : typeof caches}.`);
    }
    const offset = caches?.[0]?.length ?? 0;
    if (ids instanceof tf.Tensor && ids.rank === 2 && keyPaddingMask !== undefined) {
      const expected = [ids.shape[0], offset + (ids.shape[1] as number)];
      if (!(keyPaddingMask instanceof tf.Tensor) || keyPaddingMask.isDisposed || !tf.util.arraysEqual(keyPaddingMask.shape, expected)) {
        throw new MieShapeError(errorMessage(NAME, 'option "keyPaddingMask"', `must be a tensor [${expected.join(', ')}] (cached + new positions, 1 = real token)`, keyPaddingMask));
      }
    }
    checkStackMemory(NAME, ids, this.config, offset, this.training);
    return tf.tidy(() => {
      const mask = keyPaddingMask ?? (caches ? undefined : (this.paddingMask(ids) ?? undefined));
      let x = embedWithPositions(ids, this.embedding, this.positionalEncoding, this.config.dropout, this.training, offset);
      const selfAttention: tf.Tensor[] = [];
      const bias = relativeBias(this.relativePositionBias, ids.shape[1] as number, offset);
      this.layers.forEach((layer, i) => {
        const result = layer.forwardWithAttention(x, null, { causal: true, keyPaddingMask: mask, cache: caches?.[i], bias });
        x = result.output;
        selfAttention.push(result.selfAttention);
      });
      if (this.norm) x = this.norm.forward(x);
      return { output: this.project(x), selfAttention };
    });
  }

  /** Hidden states `[b, t, d]` -> logits `[b, t, V]`: the output projection, or the tied embedding. */
  project(hidden: tf.Tensor): tf.Tensor {
    return this.outputProjection ? this.outputProjection.forward(hidden) : this.embedding.attend(hidden);
  }

  /** `[b, t]` float mask (1 = real token) from `padTokenId`, or null without one. */
  paddingMask(ids: tf.Tensor): tf.Tensor | null {
    const { padTokenId } = this.config;
    if (padTokenId === null || !(ids instanceof tf.Tensor)) return null;
    return tf.tidy(() => tf.cast(tf.notEqual(ids, tf.scalar(padTokenId, ids.dtype)), 'float32'));
  }

  /** The decoding interface (decoding.ts): checks `promptIds` and says what generation may do with it. */
  decodingSpec(promptIds: unknown): DecodingSpec {
    if (!(promptIds instanceof tf.Tensor) || promptIds.isDisposed || promptIds.dtype !== 'int32' || promptIds.rank !== 2 || promptIds.shape[0] === 0) {
      throw new MieShapeError(errorMessage(`${NAME}.generate`, 'promptIds', 'must be a live int32 tensor of token ids [batch >= 1, promptLength]', promptIds));
    }
    const { vocabSize, maxSeqLength, bosTokenId, eosTokenId, padTokenId, dModel, numHeads, numKeyValueHeads, numLayers } = this.config;
    const promptLength = promptIds.shape[1] as number;
    const kvWidth = (dModel / numHeads) * numKeyValueHeads;
    return {
      name: `${NAME}.generate`,
      inputName: 'promptIds',
      maskOption: 'keyPaddingMask',
      vocabSize,
      maxNewTokens: (bos) => Math.max(0, maxSeqLength - promptLength - (bos === null ? 0 : 1)),
      bosTokenId,
      eosTokenId,
      padTokenId,
      requiresBos: false,
      // Caches of every block for the whole sequence, the prompt pass's scores, the step's logits
      // and their read-back copy; without caches, each step's whole forward.
      bytesPerRow: (maxNewTokens, useCache) => {
        const length = promptLength + 1 + maxNewTokens;
        return float32Bytes(
          useCache
            ? 2 * numLayers * length * kvWidth + 2 * numHeads * promptLength * promptLength + 4 * promptLength * dModel + 3 * vocabSize
            : length * (3 * vocabSize + 4 * dModel + 2 * numHeads * length),
        );
      },
    };
  }

  /** The decoding interface: the prompts expanded to `rowsPerInput` rows, and (with caches) one cache per block. */
  startDecoding(promptIds: tf.Tensor, options: DecodingStartOptions): DecodingState {
    return new DecoderOnlyDecodingState(this, promptIds, options);
  }

  /**
   * Continues `promptIds` (int32 `[b, p]`; left-pad prompts of different lengths with
   * `padTokenId`, or pass `keyPaddingMask`): greedy search, beam search (`numBeams`) or sampling
   * (`doSample`), with cached incremental decoding. Resolves to `{ sequences, scores }`: the
   * generated tokens (prompt excluded), up to and including the EOS. With absolute positions
   * (sinusoidal, learned) padding shifts a prompt's positions; rotary and ALiBi are unaffected.
   */
  async generate(promptIds: tf.Tensor, options?: GenerateOptions): Promise<GenerationOutput> {
    return generateSequences(this, promptIds, options);
  }

  /** Streams greedy search or sampling, one `{ step, tokens, finished }` per generated position. */
  generateStream(promptIds: tf.Tensor, options?: GenerateOptions): AsyncGenerator<GenerationStreamStep, GenerationOutput, undefined> {
    return streamSequences(this, promptIds, options);
  }
}
// Named explicitly: bundlers rename classes and minifiers mangle them.
registerModel(DecoderOnlyTransformer, 'DecoderOnlyTransformer');

/** A decoder-only decoding in progress. */
class DecoderOnlyDecodingState implements DecodingState {
  readonly rows: number;
  readonly #model: DecoderOnlyTransformer;
  readonly #prompt: tf.Tensor; // [rows, p'] int32 (BOS prepended)
  #mask: tf.Tensor | null; // [rows, fed so far] float32, or null (nothing padded)
  readonly #caches: KeyValueCache[] | null;
  #prefilled = false;

  constructor(model: DecoderOnlyTransformer, promptIds: tf.Tensor, { rowsPerInput: k, useCache, bosTokenId, padTokenId, keyPaddingMask }: DecodingStartOptions) {
    const name = `${NAME}.generate`;
    if (promptIds.shape[1] === 0 && bosTokenId === null) {
      throw new MieShapeError(errorMessage(name, 'promptIds', 'must hold at least one token when there is no bosTokenId to start from', promptIds));
    }
    this.#model = model;
    const batch = promptIds.shape[0];
    this.rows = batch * k;
    const { prompt, mask } = tf.tidy(() => {
      const index = tf.tensor1d(Array.from({ length: this.rows }, (_, i) => Math.floor(i / k)), 'int32');
      let ids = promptIds;
      let padding: tf.Tensor | null =
        keyPaddingMask !== undefined ? tf.cast(keyPaddingMask, 'float32') : padTokenId !== null ? tf.cast(tf.notEqual(ids, tf.scalar(padTokenId, 'int32')), 'float32') : null;
      if (bosTokenId !== null) {
        ids = tf.concat([tf.fill([batch, 1], bosTokenId, 'int32'), ids], 1);
        if (padding) padding = tf.concat([tf.ones([batch, 1]), padding], 1);
      }
      const expanded = tf.gather(ids, index);
      return padding ? { prompt: expanded, mask: tf.gather(padding, index) } : { prompt: expanded };
    });
    this.#prompt = prompt;
    this.#mask = mask ?? null;
    this.#caches = useCache ? model.layers.map(() => new KeyValueCache()) : null;
  }

  step(generated: readonly (readonly number[])[]): tf.Tensor {
    const rows = this.rows;
    const vocab = this.#model.config.vocabSize;
    const last = (logits: tf.Tensor) => {
      const length = logits.shape[1] as number;
      return tf.reshape(tf.slice(logits, [0, length - 1, 0], [rows, 1, vocab]), [rows, vocab]);
    };
    if (this.#caches) {
      const caches = this.#caches;
      if (!this.#prefilled) {
        // The whole prompt once, filling the caches; then one token per step.
        this.#prefilled = true;
        return tf.tidy(() => last(this.#model.forward(this.#prompt, { caches, keyPaddingMask: this.#mask ?? undefined })));
      }
      if (this.#mask) this.#growMask(1);
      return tf.tidy(() => {
        const ids = tf.tensor2d(generated.map((tokens) => [tokens[tokens.length - 1]]), [rows, 1], 'int32');
        return last(this.#model.forward(ids, { caches, keyPaddingMask: this.#mask ?? undefined }));
      });
    }
    // Reference path: the prompt and everything generated, again.
    return tf.tidy(() => {
      const count = generated[0].length;
      const ids = count > 0 ? tf.concat([this.#prompt, tf.tensor2d(generated.map((tokens) => [...tokens]), [rows, count], 'int32')], 1) : this.#prompt;
      const mask = this.#mask ? (count > 0 ? tf.concat([this.#mask, tf.ones([rows, count])], 1) : this.#mask) : tf.onesLike(tf.cast(ids, 'float32'));
      return last(this.#model.forward(ids, { keyPaddingMask: mask }));
    });
  }

  /** Appends `count` real positions to the cached-path mask. */
  #growMask(count: number): void {
    const previous = this.#mask as tf.Tensor;
    this.#mask = tf.tidy(() => tf.concat([previous, tf.ones([this.rows, count])], 1));
    previous.dispose();
  }

  reorder(indices: readonly number[]): void {
    if (indices.every((source, i) => source === i)) return;
    const index = tf.tensor1d([...indices], 'int32');
    for (const cache of this.#caches ?? []) cache.reorder(index);
    if (this.#mask) {
      const previous = this.#mask;
      this.#mask = tf.gather(previous, index);
      previous.dispose();
    }
    index.dispose();
  }

  dispose(): void {
    tf.dispose(this.#mask ? [this.#prompt, this.#mask] : [this.#prompt]);
    for (const cache of this.#caches ?? []) cache.dispose();
  }
}
