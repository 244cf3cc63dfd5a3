/**
 * Autoregressive generation for {@link EncoderDecoderTransformer}: greedy search, beam search
 * (Hugging Face `BeamSearchScorer` semantics) and sampling (temperature, top-k, top-p), with
 * repetition penalty and n-gram blocking, incremental decoding with per-layer key/value caches,
 * and a streaming variant that honours an `AbortSignal`.
 *
 * Design: the model runs on the backend; each step reads the next-token logits `[rows, V]` back
 * once (`await data()`) and every choice (processors, beams, draws) is made in plain JavaScript in
 * float64, so the same logits give the same tokens on every backend and a seed reproduces a sample.
 *
 * Legend: b sources, s source length, k rows per source (beams or return sequences), V vocabulary.
 */
import { MieConfigError, MieShapeError, checkAllocation, checkOptions, errorMessage, float32Bytes, nextSeed, tf, type Module } from '@mie/core';
import { KeyValueCache, type ProjectedKeyValue } from '@mie/attention';
import { BeamHypotheses, beamStep, type Beam } from './beam-search';
import { applyNoRepeatNgram, applyRepetitionPenalty, argmax, logSoftmax, sampleCategorical, samplingDistribution, seededRandom } from './logits-processors';
import type { EncoderDecoderTransformer } from './encoder-decoder-transformer';

/** Options of {@link generate} / `EncoderDecoderTransformer.generate`. */
export interface GenerateOptions {
  /** Most tokens to generate per sequence (EOS included). At most the model's `maxSeqLength`. Default 20 (or `maxSeqLength` when smaller). */
  maxNewTokens?: number;
  /** Token that starts every target (the decoder start token). Required: the model config has none. */
  bosTokenId?: number;
  /** Token that ends a sequence; `null` (default) generates exactly `maxNewTokens` tokens. */
  eosTokenId?: number | null;
  /**
   * Padding token of the source (gives the source key padding mask when `srcKeyPaddingMask` is
   * not given) and the token fed to rows that have finished. Default: the model's `padTokenId`.
   */
  padTokenId?: number | null;
  /** `[b, s]` source key padding mask (1 = real token), overriding the one derived from `padTokenId`. Not disposed. */
  srcKeyPaddingMask?: tf.Tensor;
  /** Beams per source; 1 (default) is greedy search or sampling. */
  numBeams?: number;
  /** Beam score = sum of log-probabilities / generatedLength ** lengthPenalty (generated tokens, EOS included). Default 1. */
  lengthPenalty?: number;
  /**
   * Beam search: `true` stops a source once `numBeams` hypotheses have finished; `false` (default)
   * stops only when no running beam can still beat the worst finished one (HF `"never"`).
   */
  earlyStopping?: boolean;
  /** Sequences returned per source: at most `numBeams` in beam search, any number when sampling, 1 for greedy. Default 1. */
  numReturnSequences?: number;
  /** Sample the next token instead of taking the most probable one (with `numBeams: 1`). Default false. */
  doSample?: boolean;
  /** Sampling temperature, > 0. Default 1. */
  temperature?: number;
  /** Sampling: keep only the `topK` most probable tokens; 0 (default) keeps all (HF defaults to 50). */
  topK?: number;
  /** Sampling: nucleus filtering, in (0, 1]; 1 (default) keeps all. */
  topP?: number;
  /** Sampling seed: the same seed gives the same output. Default: drawn from `nextSeed()` (so `setSeed` fixes it). */
  seed?: number;
  /** CTRL repetition penalty (> 0) on tokens already generated; 1 (default) is off. */
  repetitionPenalty?: number;
  /** Never generate an n-gram of this size twice in one sequence; 0 (default) is off. */
  noRepeatNgramSize?: number;
  /** Incremental decoding with key/value caches (default true); false re-runs the whole decoder each step (a reference). */
  useCache?: boolean;
  /** Aborting stops generation before the next step, frees every tensor and rejects with `signal.reason`. */
  signal?: AbortSignal;
}

/** Result of {@link generate}. */
export interface GenerationOutput {
  /**
   * Generated token ids, BOS excluded, up to and including the EOS (sequences are not padded):
   * `numReturnSequences` rows per source, sources in order, best first within a source.
   */
  sequences: number[][];
  /**
   * One per sequence: the sum of the log-probabilities of its tokens under the model's
   * distribution after `repetitionPenalty` / `noRepeatNgramSize` (before the sampling warpers);
   * in beam search divided by `length ** lengthPenalty`. A missing beam hypothesis (fewer distinct
   * sequences than asked for) is an empty sequence with score -Infinity.
   */
  scores: number[];
}

/** One step of {@link generateStream}. */
export interface GenerationStreamStep {
  /** 0-based index of the generated position. */
  step: number;
  /** One token per output row (`b * numReturnSequences` rows); `null` for a row that finished at an earlier step. */
  tokens: (number | null)[];
  /** Per row: whether it has finished (emitted EOS) by this step. */
  finished: boolean[];
}

const NAME = 'EncoderDecoderTransformer.generate';

const OPTIONS = [
  'maxNewTokens', 'bosTokenId', 'eosTokenId', 'padTokenId', 'srcKeyPaddingMask', 'numBeams', 'lengthPenalty', 'earlyStopping',
  'numReturnSequences', 'doSample', 'temperature', 'topK', 'topP', 'seed', 'repetitionPenalty', 'noRepeatNgramSize', 'useCache', 'signal',
] as const;

interface ResolvedOptions {
  maxNewTokens: number;
  bosTokenId: number;
  eosTokenId: number | null;
  padTokenId: number | null;
  /** Fed to rows that have finished (and dead beams). */
  filler: number;
  srcKeyPaddingMask?: tf.Tensor;
  numBeams: number;
  lengthPenalty: number;
  earlyStopping: boolean;
  numReturnSequences: number;
  doSample: boolean;
  temperature: number;
  topK: number;
  topP: number;
  seed: number;
  repetitionPenalty: number;
  noRepeatNgramSize: number;
  useCache: boolean;
  signal?: AbortSignal;
}

const fail = (name: string, expected: string, received: unknown): never => {
  throw new MieConfigError(errorMessage(NAME, `option "${name}"`, expected, received));
};
const isInteger = (value: unknown, minimum: number): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= minimum;
const isFinite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** Validates `src` (int32 `[b, s]`) and the options; fills in defaults. */
function resolveOptions(model: EncoderDecoderTransformer, src: unknown, options: GenerateOptions): ResolvedOptions {
  if (!(src instanceof tf.Tensor) || src.isDisposed || src.dtype !== 'int32' || src.rank !== 2 || src.shape[0] === 0 || src.shape[1] === 0) {
    throw new MieShapeError(errorMessage(NAME, 'src', 'must be a live int32 tensor of token ids [batch, srcLength] (both >= 1)', src));
  }
  checkOptions(NAME, options, OPTIONS);
  const config = model.config as typeof model.config & { bosTokenId?: number | null; eosTokenId?: number | null };
  const vocab = config.tgtVocabSize;
  const tokenId = (name: string, value: unknown, nullable: boolean): number | null => {
    if (value === null && nullable) return null;
    if (!isInteger(value, 0) || value >= vocab) fail(name, `must be ${nullable ? 'null or ' : ''}a token id in [0, ${vocab})`, value);
    return value as number;
  };
  const {
    maxNewTokens = Math.min(20, config.maxSeqLength),
    bosTokenId = config.bosTokenId ?? undefined,
    eosTokenId = config.eosTokenId ?? null,
    padTokenId = config.padTokenId,
    srcKeyPaddingMask,
    numBeams = 1,
    lengthPenalty = 1,
    earlyStopping = false,
    numReturnSequences = 1,
    doSample = false,
    temperature = 1,
    topK = 0,
    topP = 1,
    seed,
    repetitionPenalty = 1,
    noRepeatNgramSize = 0,
    useCache = true,
    signal,
  } = options;
  if (bosTokenId === undefined) fail('bosTokenId', 'is required (the model config has no bosTokenId): the token every target starts with', bosTokenId);
  const bos = tokenId('bosTokenId', bosTokenId, false) as number;
  const eos = tokenId('eosTokenId', eosTokenId, true);
  const pad = tokenId('padTokenId', padTokenId, true);
  if (!isInteger(maxNewTokens, 1) || maxNewTokens > config.maxSeqLength) fail('maxNewTokens', `must be an integer in [1, maxSeqLength = ${config.maxSeqLength}]`, maxNewTokens);
  if (!isInteger(numBeams, 1)) fail('numBeams', 'must be a positive integer', numBeams);
  if (!isFinite(lengthPenalty)) fail('lengthPenalty', 'must be a finite number', lengthPenalty);
  if (typeof earlyStopping !== 'boolean') fail('earlyStopping', 'must be a boolean', earlyStopping);
  if (typeof doSample !== 'boolean') fail('doSample', 'must be a boolean', doSample);
  if (typeof useCache !== 'boolean') fail('useCache', 'must be a boolean', useCache);
  if (!isInteger(numReturnSequences, 1)) fail('numReturnSequences', 'must be a positive integer', numReturnSequences);
  if (numBeams > 1 && numReturnSequences > numBeams) fail('numReturnSequences', `must be <= numBeams (${numBeams})`, numReturnSequences);
  if (numBeams === 1 && !doSample && numReturnSequences > 1) fail('numReturnSequences', 'must be 1 for greedy search (use numBeams or doSample)', numReturnSequences);
  if (doSample && numBeams > 1) fail('numBeams', 'must be 1 with doSample: true (beam sampling is not supported)', numBeams);
  if (!isFinite(temperature) || temperature <= 0) fail('temperature', 'must be a finite number > 0', temperature);
  if (!isInteger(topK, 0)) fail('topK', 'must be an integer >= 0 (0 = off)', topK);
  if (!isFinite(topP) || topP <= 0 || topP > 1) fail('topP', 'must be a number in (0, 1]', topP);
  if (seed !== undefined && !isFinite(seed)) fail('seed', 'must be a finite number', seed);
  if (!doSample) {
    const sampling: [string, unknown, unknown][] = [['temperature', temperature, 1], ['topK', topK, 0], ['topP', topP, 1], ['seed', seed, undefined]];
    for (const [name, value, unset] of sampling) if (value !== unset) fail(name, 'only applies with doSample: true', value);
  }
  if (!isFinite(repetitionPenalty) || repetitionPenalty <= 0) fail('repetitionPenalty', 'must be a finite number > 0 (1 = off)', repetitionPenalty);
  if (!isInteger(noRepeatNgramSize, 0)) fail('noRepeatNgramSize', 'must be an integer >= 0 (0 = off)', noRepeatNgramSize);
  if (signal !== undefined && !(signal instanceof AbortSignal)) fail('signal', 'must be an AbortSignal', signal);
  if (srcKeyPaddingMask !== undefined) {
    const ok = srcKeyPaddingMask instanceof tf.Tensor && !srcKeyPaddingMask.isDisposed && srcKeyPaddingMask.rank === 2;
    if (!ok || srcKeyPaddingMask.shape[0] !== src.shape[0] || srcKeyPaddingMask.shape[1] !== src.shape[1]) {
      throw new MieShapeError(errorMessage(NAME, 'option "srcKeyPaddingMask"', `must be a tensor [${src.shape.join(', ')}] like src (1 = real token)`, srcKeyPaddingMask));
    }
  }
  checkWorkingSet(model, src, maxNewTokens, numBeams > 1 ? numBeams : numReturnSequences, useCache);
  return {
    maxNewTokens, bosTokenId: bos, eosTokenId: eos, padTokenId: pad, filler: pad ?? eos ?? bos, srcKeyPaddingMask,
    numBeams, lengthPenalty, earlyStopping, numReturnSequences, doSample, temperature, topK, topP,
    seed: doSample ? (seed ?? nextSeed()) : 0, repetitionPenalty, noRepeatNgramSize, useCache, signal,
  };
}

/**
 * Refuses (MieResourceError) a generation whose tensors would not fit in the backend's memory,
 * before anything is allocated: per output row (`b * k` rows), the expanded encoder output and the
 * cross-attention keys/values of every layer, the self-attention caches for `maxNewTokens`
 * positions, the step's logits and their read-back copy, and the attention scores.
 */
function checkWorkingSet(model: EncoderDecoderTransformer, src: tf.Tensor, maxNewTokens: number, k: number, useCache: boolean): void {
  const { dModel, numHeads, numDecoderLayers: layers, tgtVocabSize: vocab } = model.config;
  const [batch, srcLength] = src.shape;
  const rows = batch * k;
  const perRow = useCache
    ? srcLength * dModel * (1 + 2 * layers) + 2 * layers * maxNewTokens * dModel + 3 * vocab + 2 * numHeads * (srcLength + maxNewTokens)
    : srcLength * dModel + maxNewTokens * (3 * vocab + 4 * dModel + 2 * numHeads * (srcLength + maxNewTokens));
  checkAllocation(NAME, `${k > 1 ? `${k} beams or sequences x ` : ''}batch ${batch} (${rows} rows of up to ${maxNewTokens} tokens)`, float32Bytes(rows, perRow));
}

// Generation runs in eval mode. Overlapping generations on one model share one saved state: the
// first saves every module's mode, the last to finish restores it.
const savedModes = new WeakMap<object, { depth: number; modes: [Module, boolean][] }>();

function enterEvalMode(model: EncoderDecoderTransformer): () => void {
  let entry = savedModes.get(model);
  if (!entry) {
    entry = { depth: 0, modes: model.modules().map((module) => [module, module.training]) };
    savedModes.set(model, entry);
    model.eval();
  }
  entry.depth++;
  const saved = entry;
  let released = false;
  return () => {
    if (released) return;
    released = true;
    if (--saved.depth > 0) return;
    savedModes.delete(model);
    for (const [module, training] of saved.modes) module.training = training;
  };
}

/** Lets timers and abort handlers run between steps (a resolved `data()` alone does not). */
const nextMacrotask = (): Promise<void> =>
  new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

/**
 * The model side of one generation: the encoded sources expanded to `k` rows each, the source
 * mask, and (with `useCache`) the per-layer self-attention caches and projected cross-attention
 * keys/values. `nextLogits(fed)` runs one step and reads back `[rows, V]`.
 */
class DecodingSession {
  readonly rows: number;
  readonly vocabSize: number;
  readonly #model: EncoderDecoderTransformer;
  readonly #options: ResolvedOptions;
  readonly #memory: tf.Tensor; // [b*k, s, d]
  readonly #memoryMask: tf.Tensor | undefined; // [b*k, s]
  readonly #memoryKeyValues: ProjectedKeyValue[] | undefined; // per layer [b*k, heads, s, headDim]
  readonly #caches: KeyValueCache[] | undefined;

  constructor(model: EncoderDecoderTransformer, src: tf.Tensor, options: ResolvedOptions, k: number) {
    this.#model = model;
    this.#options = options;
    this.rows = src.shape[0] * k;
    this.vocabSize = model.config.tgtVocabSize;
    const { padTokenId, srcKeyPaddingMask, useCache } = options;
    const expanded = tf.tidy(() => {
      const mask =
        srcKeyPaddingMask !== undefined
          ? tf.cast(srcKeyPaddingMask, 'float32')
          : padTokenId !== null
            ? tf.cast(tf.notEqual(src, tf.scalar(padTokenId, 'int32')), 'float32')
            : undefined;
      // Encode each source once; row i of the expansion is source floor(i / k).
      const memory = model.encode(src, { srcKeyPaddingMask: mask ?? tf.onesLike(tf.cast(src, 'float32')) });
      const index = tf.tensor1d(Array.from({ length: this.rows }, (_, i) => Math.floor(i / k)), 'int32');
      const projected = useCache ? model.decoder.projectMemory(memory) : undefined;
      return {
        memory: tf.gather(memory, index), // [b, s, d] -> [b*k, s, d]
        mask: mask && tf.gather(mask, index), // [b, s] -> [b*k, s]
        memoryKeyValues: projected?.map(({ keys, values }) => ({ keys: tf.gather(keys, index), values: tf.gather(values, index) })),
      };
    });
    this.#memory = expanded.memory;
    this.#memoryMask = expanded.mask;
    this.#memoryKeyValues = expanded.memoryKeyValues;
    this.#caches = useCache ? model.decoder.layers.map(() => new KeyValueCache()) : undefined;
  }

  /** Next-token logits `[rows * V]` after the BOS and `fed[row]` (the tokens fed so far, one list per row). */
  async nextLogits(fed: readonly number[][]): Promise<Float32Array> {
    const { bosTokenId, signal } = this.#options;
    await nextMacrotask();
    signal?.throwIfAborted();
    const logits = tf.tidy(() => {
      if (this.#caches) {
        // Only the newest token: earlier positions are in the caches. [rows, 1] -> [rows, 1, V]
        const ids = tf.tensor2d(fed.map((tokens) => [tokens.length > 0 ? tokens[tokens.length - 1] : bosTokenId]), [this.rows, 1], 'int32');
        const out = this.#model.decode(ids, this.#memory, { caches: this.#caches, memoryKeyValues: this.#memoryKeyValues, memoryKeyPaddingMask: this.#memoryMask });
        return tf.reshape(out, [this.rows, this.vocabSize]);
      }
      // Reference path: the whole target again. [rows, t] -> [rows, t, V] -> last position [rows, V]
      const length = fed[0].length + 1;
      const ids = tf.tensor2d(fed.map((tokens) => [bosTokenId, ...tokens]), [this.rows, length], 'int32');
      const out = this.#model.decode(ids, this.#memory, { tgtKeyPaddingMask: tf.ones([this.rows, length]), memoryKeyPaddingMask: this.#memoryMask });
      return tf.reshape(tf.slice(out, [0, length - 1, 0], [this.rows, 1, this.vocabSize]), [this.rows, this.vocabSize]);
    });
    try {
      return (await logits.data()) as Float32Array;
    } finally {
      logits.dispose();
      signal?.throwIfAborted();
    }
  }

  /** Beam search: row `i` continues from old row `indices[i]` (the caches follow; histories are the caller's). */
  reorder(indices: number[]): void {
    if (this.#caches && indices.some((source, i) => source !== i)) {
      const index = tf.tensor1d(indices, 'int32');
      for (const cache of this.#caches) cache.reorder(index);
      index.dispose();
    }
  }

  dispose(): void {
    tf.dispose([this.#memory, ...(this.#memoryMask ? [this.#memoryMask] : [])]);
    for (const { keys, values } of this.#memoryKeyValues ?? []) tf.dispose([keys, values]);
    for (const cache of this.#caches ?? []) cache.dispose();
  }
}

/** Row `row` of the read-back logits, through the logits processors, in float64. */
function processedRow(logits: Float32Array, row: number, vocabSize: number, generated: readonly number[], options: ResolvedOptions): Float64Array {
  const scores = Float64Array.from(logits.subarray(row * vocabSize, (row + 1) * vocabSize));
  applyRepetitionPenalty(scores, generated, options.repetitionPenalty);
  applyNoRepeatNgram(scores, generated, options.noRepeatNgramSize);
  return scores;
}

/** Greedy search or sampling, one step at a time; returns the whole output when done. */
async function* greedyOrSampleSteps(model: EncoderDecoderTransformer, src: tf.Tensor, options: ResolvedOptions): AsyncGenerator<GenerationStreamStep, GenerationOutput, undefined> {
  options.signal?.throwIfAborted();
  const restoreMode = enterEvalMode(model);
  let session: DecodingSession | null = null;
  try {
    session = new DecodingSession(model, src, options, options.numReturnSequences);
    const { rows, vocabSize } = session;
    const fed = Array.from({ length: rows }, (): number[] => []);
    const sequences = Array.from({ length: rows }, (): number[] => []);
    const scores = new Array<number>(rows).fill(0);
    const finished = new Array<boolean>(rows).fill(false);
    const random = options.doSample ? seededRandom(options.seed) : null;
    for (let step = 0; step < options.maxNewTokens && !finished.every(Boolean); step++) {
      const logits = await session.nextLogits(fed);
      const tokens: (number | null)[] = [];
      for (let row = 0; row < rows; row++) {
        if (finished[row]) {
          fed[row].push(options.filler);
          tokens.push(null);
          continue;
        }
        const scoresRow = processedRow(logits, row, vocabSize, sequences[row], options);
        const token = random ? sampleCategorical(samplingDistribution(scoresRow, options), random) : argmax(scoresRow);
        scores[row] += logSoftmax(scoresRow)[token];
        sequences[row].push(token);
        fed[row].push(token);
        tokens.push(token);
        if (token === options.eosTokenId) finished[row] = true;
      }
      yield { step, tokens, finished: [...finished] };
    }
    return { sequences, scores };
  } finally {
    session?.dispose();
    restoreMode();
  }
}

/** Beam search (HF `BeamSearchScorer` semantics, see beam-search.ts). */
async function runBeamSearch(model: EncoderDecoderTransformer, src: tf.Tensor, options: ResolvedOptions): Promise<GenerationOutput> {
  options.signal?.throwIfAborted();
  const { numBeams: k, maxNewTokens, eosTokenId, filler, lengthPenalty, earlyStopping, numReturnSequences } = options;
  const batch = src.shape[0];
  const restoreMode = enterEvalMode(model);
  let session: DecodingSession | null = null;
  try {
    session = new DecodingSession(model, src, options, k);
    const { vocabSize } = session;
    // All k beams of a source start from the BOS; only the first is live, so no duplicates.
    const beams: Beam[][] = Array.from({ length: batch }, () => Array.from({ length: k }, (_, j) => ({ tokens: [], sumLogProbs: j === 0 ? 0 : -Infinity })));
    const hypotheses = Array.from({ length: batch }, () => new BeamHypotheses(k, lengthPenalty));
    const done = new Array<boolean>(batch).fill(false);
    const dead = new Float64Array(vocabSize).fill(-Infinity);
    for (let step = 0; step < maxNewTokens; step++) {
      const logits = await session.nextLogits(beams.flat().map((beam) => beam.tokens));
      const reorder: number[] = [];
      for (let i = 0; i < batch; i++) {
        if (done[i]) {
          beams[i] = beams[i].map((beam) => ({ tokens: [...beam.tokens, filler], sumLogProbs: -Infinity }));
          for (let j = 0; j < k; j++) reorder.push(i * k + j);
          continue;
        }
        const logProbs = beams[i].map((beam, j) =>
          beam.sumLogProbs > -Infinity ? logSoftmax(processedRow(logits, i * k + j, vocabSize, beam.tokens, options)) : dead,
        );
        const next = beamStep(beams[i], logProbs, hypotheses[i], { eosTokenId, filler });
        beams[i] = next.beams;
        // Loops, not spreads: a spread of numBeams arguments overflows the stack for large beams.
        for (const source of next.sources) reorder.push(i * k + source);
        const bestRunning = next.beams.reduce((best, beam) => Math.max(best, beam.sumLogProbs), -Infinity);
        done[i] = hypotheses[i].isDone(bestRunning, step + 1, maxNewTokens, earlyStopping);
      }
      if (done.every(Boolean)) break;
      session.reorder(reorder);
    }
    // Sources still running at maxNewTokens: their live beams end here, without EOS.
    for (let i = 0; i < batch; i++) {
      if (!done[i]) for (const beam of beams[i]) hypotheses[i].add(beam.tokens, beam.sumLogProbs);
    }
    const sequences: number[][] = [];
    const scores: number[] = [];
    for (const kept of hypotheses) {
      const best = kept.best();
      for (let r = 0; r < numReturnSequences; r++) {
        sequences.push(best[r]?.tokens ?? []);
        scores.push(best[r]?.score ?? -Infinity);
      }
    }
    return { sequences, scores };
  } finally {
    session?.dispose();
    restoreMode();
  }
}

/**
 * Generates target sequences for `src` (int32 `[b, s]`, padded with `padTokenId`): greedy search
 * by default, beam search with `numBeams > 1`, sampling with `doSample`. Async: each step reads
 * the next-token logits back once. Resolves to `{ sequences, scores }` (see {@link GenerationOutput});
 * rejects with `MieConfigError` / `MieShapeError` for bad options or input, and with
 * `signal.reason` when aborted. Runs the model in eval mode and restores the caller's modes;
 * leaves no tensors behind.
 */
export async function generate(model: EncoderDecoderTransformer, src: tf.Tensor, options: GenerateOptions = {}): Promise<GenerationOutput> {
  const resolved = resolveOptions(model, src, options);
  if (resolved.numBeams > 1) return runBeamSearch(model, src, resolved);
  const steps = greedyOrSampleSteps(model, src, resolved);
  for (;;) {
    const next = await steps.next();
    if (next.done) return next.value;
  }
}

/**
 * Beam search for any `numBeams`, including 1 (where {@link generate} runs greedy search instead;
 * with `earlyStopping: true` the two agree). Same options and result as {@link generate}.
 */
export async function beamSearch(model: EncoderDecoderTransformer, src: tf.Tensor, options: GenerateOptions = {}): Promise<GenerationOutput> {
  return runBeamSearch(model, src, resolveOptions(model, src, options));
}

/**
 * Streams greedy search or sampling: one {@link GenerationStreamStep} per generated position,
 * with one token per output row (`b * numReturnSequences` rows), as soon as it is chosen. The
 * non-null tokens of row r, concatenated, are `generate(...)`'s `sequences[r]`; the generator's
 * return value is that whole {@link GenerationOutput}. Options are checked at once (throws);
 * nothing is computed until the first `next()`. Breaking out of `for await` frees everything;
 * aborting `options.signal` makes the pending or next `next()` reject with `signal.reason`
 * (by default a `DOMException` named `AbortError`), after freeing everything. Beam search is
 * not streamed (beams are only final at the end): `numBeams > 1` is a `MieConfigError`.
 */
export function generateStream(model: EncoderDecoderTransformer, src: tf.Tensor, options: GenerateOptions = {}): AsyncGenerator<GenerationStreamStep, GenerationOutput, undefined> {
  const resolved = resolveOptions(model, src, options);
  if (resolved.numBeams > 1) {
    throw new MieConfigError(errorMessage('EncoderDecoderTransformer.generateStream', 'option "numBeams"', 'must be 1 (beam search is not streamed; use generate())', resolved.numBeams));
  }
  return greedyOrSampleSteps(model, src, resolved);
}
