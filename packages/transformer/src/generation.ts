/**
 * Autoregressive generation for any {@link DecodingModel} (the encoder-decoder Transformer, the
 * decoder-only language model, or a user's model implementing decoding.ts): greedy search, beam search
 * (Hugging Face `BeamSearchScorer` semantics) and sampling (temperature, top-k, top-p), with
 * repetition penalty and n-gram blocking, incremental decoding with per-layer key/value caches,
 * and a streaming variant that honours an `AbortSignal`.
 *
 * Design: the model runs on the backend; each step reads the next-token logits `[rows, V]` back
 * once (`await data()`) and every choice (processors, beams, draws) is made in plain JavaScript in
 * float64, so the same logits give the same tokens on every backend and a seed reproduces a sample.
 *
 * Legend: b inputs, k rows per input (beams or return sequences), V vocabulary.
 */
import { MieConfigError, MieShapeError, checkAllocation, checkOptions, errorMessage, nextSeed, tf, type Module } from '@mie/core';
import { BeamHypotheses, beamStep, type Beam } from './beam-search';
import type { DecodingModel, DecodingSpec, DecodingState, LogitsProcessor, StoppingCriterion } from './decoding';
import { applyNoRepeatNgram, applyRepetitionPenalty, argmax, logSoftmax, sampleCategorical, samplingDistribution, seededRandom } from './logits-processors';

/** Options of {@link generate} / `EncoderDecoderTransformer.generate` / `DecoderOnlyTransformer.generate`. */
export interface GenerateOptions {
  /** Most tokens to generate per sequence (EOS included). At most the model's `maxSeqLength` (less the prompt). Default 20 (or that limit when smaller). */
  maxNewTokens?: number;
  /**
   * Seq2seq: the token that starts every target (the decoder start token); required unless the
   * model config has one. Decoder-only: prepended to every prompt when given. Default: the config's.
   */
  bosTokenId?: number | null;
  /** Token that ends a sequence; `null` generates exactly `maxNewTokens` tokens. Default: the config's, else null. */
  eosTokenId?: number | null;
  /**
   * Padding token of the input (gives its key padding mask when no mask is given) and the token
   * fed to rows that have finished. Default: the model's `padTokenId`.
   */
  padTokenId?: number | null;
  /** Seq2seq: `[b, s]` source key padding mask (1 = real token), overriding the one derived from `padTokenId`. Not disposed. */
  srcKeyPaddingMask?: tf.Tensor;
  /** Decoder-only: `[b, p]` prompt key padding mask (1 = real token; left padding), overriding `padTokenId`. Not disposed. */
  keyPaddingMask?: tf.Tensor;
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
  /** Your own logits processors, run in order after the built-in penalties (see {@link LogitsProcessor}). */
  logitsProcessors?: LogitsProcessor[];
  /** Your own stopping criteria: a row finishes when any returns true (see {@link StoppingCriterion}). */
  stoppingCriteria?: StoppingCriterion[];
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

const OPTIONS = [
  'maxNewTokens', 'bosTokenId', 'eosTokenId', 'padTokenId', 'numBeams', 'lengthPenalty', 'earlyStopping',
  'numReturnSequences', 'doSample', 'temperature', 'topK', 'topP', 'seed', 'repetitionPenalty', 'noRepeatNgramSize', 'useCache', 'signal',
  'logitsProcessors', 'stoppingCriteria',
] as const;

interface ResolvedOptions {
  spec: DecodingSpec;
  maxNewTokens: number;
  bosTokenId: number | null;
  eosTokenId: number | null;
  padTokenId: number | null;
  /** Fed to rows that have finished (and dead beams). */
  filler: number;
  keyPaddingMask?: tf.Tensor;
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
  logitsProcessors: LogitsProcessor[];
  stoppingCriteria: StoppingCriterion[];
}
const isInteger = (value: unknown, minimum: number): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= minimum;
const isFinite = (value: unknown): value is number => typeof value === 'number' && Number.isFinite(value);

/** Validates the input (the model's {@link DecodingModel.decodingSpec}) and the options; fills in defaults. */
function resolveOptions(model: DecodingModel, input: unknown, options: GenerateOptions): ResolvedOptions {
  const spec = model.decodingSpec(input);
  const NAME = spec.name;
  const fail = (name: string, expected: string, received: unknown): never => {
    throw new MieConfigError(errorMessage(NAME, `option "${name}"`, expected, received));
  };
  checkOptions(NAME, options, [...OPTIONS, spec.maskOption]);
  const vocab = spec.vocabSize;
  const tokenId = (name: string, value: unknown, nullable: boolean): number | null => {
    if (value === null && nullable) return null;
    if (!isInteger(value, 0) || value >= vocab) fail(name, `must be ${nullable ? 'null or ' : ''}a token id in [0, ${vocab})`, value);
    return value as number;
  };
  const keyPaddingMask = (options as Record<string, unknown>)[spec.maskOption] as tf.Tensor | undefined;
  const {
    maxNewTokens = Math.min(20, spec.maxNewTokens(options.bosTokenId === undefined ? spec.bosTokenId : (options.bosTokenId ?? null))),
    bosTokenId = spec.bosTokenId,
    eosTokenId = spec.eosTokenId,
    padTokenId = spec.padTokenId,
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
    logitsProcessors = [],
    stoppingCriteria = [],
  } = options;
  if (spec.requiresBos && (bosTokenId === null || bosTokenId === undefined)) {
    fail('bosTokenId', 'is required (the model config has no bosTokenId): the token every target starts with', bosTokenId);
  }
  const bos = tokenId('bosTokenId', bosTokenId ?? null, !spec.requiresBos);
  const eos = tokenId('eosTokenId', eosTokenId ?? null, true);
  const pad = tokenId('padTokenId', padTokenId ?? null, true);
  const room = spec.maxNewTokens(bos);
  if (!isInteger(maxNewTokens, 1) || maxNewTokens > room) {
    const range = spec.requiresBos ? `[1, maxSeqLength = ${room}]` : `[1, ${room}] (maxSeqLength less the prompt)`;
    fail('maxNewTokens', room === 0 ? 'cannot be met: the prompt already fills maxSeqLength' : `must be an integer in ${range}`, maxNewTokens);
  }
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
  for (const [name, list] of [['logitsProcessors', logitsProcessors], ['stoppingCriteria', stoppingCriteria]] as const) {
    if (!Array.isArray(list) || !list.every((fn) => typeof fn === 'function')) fail(name, 'must be an array of functions', list);
  }
  const src = input as tf.Tensor;
  if (keyPaddingMask !== undefined) {
    const ok = keyPaddingMask instanceof tf.Tensor && !keyPaddingMask.isDisposed && keyPaddingMask.rank === 2;
    if (!ok || keyPaddingMask.shape[0] !== src.shape[0] || keyPaddingMask.shape[1] !== src.shape[1]) {
      throw new MieShapeError(errorMessage(NAME, `option "${spec.maskOption}"`, `must be a tensor [${src.shape.join(', ')}] like ${spec.inputName} (1 = real token)`, keyPaddingMask));
    }
  }
  const k = numBeams > 1 ? numBeams : numReturnSequences;
  const rows = src.shape[0] * k;
  checkAllocation(NAME, `${k > 1 ? `${k} beams or sequences x ` : ''}batch ${src.shape[0]} (${rows} rows of up to ${maxNewTokens} tokens)`, rows * spec.bytesPerRow(maxNewTokens, useCache));
  return {
    spec, maxNewTokens, bosTokenId: bos, eosTokenId: eos, padTokenId: pad, filler: pad ?? eos ?? bos ?? 0, keyPaddingMask,
    numBeams, lengthPenalty, earlyStopping, numReturnSequences, doSample, temperature, topK, topP,
    seed: doSample ? (seed ?? nextSeed()) : 0, repetitionPenalty, noRepeatNgramSize, useCache, signal,
    logitsProcessors: [...logitsProcessors], stoppingCriteria: [...stoppingCriteria],
  };
}

// Generation runs in eval mode. Overlapping generations on one model share one saved state: the
// first saves every module's mode, the last to finish restores it.
const savedModes = new WeakMap<object, { depth: number; modes: [Module, boolean][] }>();

function enterEvalMode(model: Module): () => void {
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
 * One generation's model side: the model's {@link DecodingState}, stepped with an abort check
 * before each step and one read-back of the logits `[rows * V]` per step.
 */
class DecodingSession {
  readonly rows: number;
  readonly vocabSize: number;
  readonly #state: DecodingState;
  readonly #signal: AbortSignal | undefined;

  constructor(model: DecodingModel, input: tf.Tensor, options: ResolvedOptions, k: number) {
    this.vocabSize = options.spec.vocabSize;
    this.#signal = options.signal;
    this.#state = model.startDecoding(input, {
      rowsPerInput: k,
      useCache: options.useCache,
      bosTokenId: options.bosTokenId,
      padTokenId: options.padTokenId,
      keyPaddingMask: options.keyPaddingMask,
    });
    this.rows = this.#state.rows;
  }

  /** Next-token logits `[rows * V]` after the tokens generated so far (one list per row). */
  async nextLogits(generated: readonly number[][]): Promise<Float32Array> {
    await nextMacrotask();
    this.#signal?.throwIfAborted();
    const logits = this.#state.step(generated);
    try {
      if (logits.size !== this.rows * this.vocabSize) {
        throw new MieShapeError(`generate: the model's decoding step returned [${logits.shape.join(', ')}], expected [${this.rows}, ${this.vocabSize}].`);
      }
      return (await logits.data()) as Float32Array;
    } finally {
      logits.dispose();
      this.#signal?.throwIfAborted();
    }
  }

  /** Beam search: row `i` continues from old row `indices[i]`. */
  reorder(indices: number[]): void {
    this.#state.reorder(indices);
  }

  dispose(): void {
    this.#state.dispose();
  }
}

/** Row `row` of the read-back logits, through the logits processors, in float64. */
function processedRow(logits: Float32Array, row: number, vocabSize: number, generated: readonly number[], options: ResolvedOptions, step: number): Float64Array {
  const scores = Float64Array.from(logits.subarray(row * vocabSize, (row + 1) * vocabSize));
  applyRepetitionPenalty(scores, generated, options.repetitionPenalty);
  applyNoRepeatNgram(scores, generated, options.noRepeatNgramSize);
  for (const processor of options.logitsProcessors) processor(scores, generated, { row, step });
  return scores;
}

/** Whether a custom stopping criterion finishes a row with `tokens`. */
function stopsRow(tokens: readonly number[], row: number, step: number, options: ResolvedOptions): boolean {
  return options.stoppingCriteria.some((criterion) => criterion(tokens, { row, step }) === true);
}

/** Greedy search or sampling, one step at a time; returns the whole output when done. */
async function* greedyOrSampleSteps(model: DecodingModel, src: tf.Tensor, options: ResolvedOptions): AsyncGenerator<GenerationStreamStep, GenerationOutput, undefined> {
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
        const scoresRow = processedRow(logits, row, vocabSize, sequences[row], options, step);
        const token = random ? sampleCategorical(samplingDistribution(scoresRow, options), random) : argmax(scoresRow);
        scores[row] += logSoftmax(scoresRow)[token];
        sequences[row].push(token);
        fed[row].push(token);
        tokens.push(token);
        if (token === options.eosTokenId || stopsRow(sequences[row], row, step, options)) finished[row] = true;
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
async function runBeamSearch(model: DecodingModel, src: tf.Tensor, options: ResolvedOptions): Promise<GenerationOutput> {
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
          beam.sumLogProbs > -Infinity ? logSoftmax(processedRow(logits, i * k + j, vocabSize, beam.tokens, options, step)) : dead,
        );
        const next = beamStep(beams[i], logProbs, hypotheses[i], { eosTokenId, filler });
        if (options.stoppingCriteria.length > 0) {
          // A beam a criterion stops is finished with the tokens it has, like one that emitted EOS.
          next.beams.forEach((beam, j) => {
            if (beam.sumLogProbs > -Infinity && stopsRow(beam.tokens, i * k + j, step, options)) {
              hypotheses[i].add(beam.tokens, beam.sumLogProbs);
              next.beams[j] = { tokens: beam.tokens, sumLogProbs: -Infinity };
            }
          });
        }
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
export async function generate(model: DecodingModel, src: tf.Tensor, options: GenerateOptions = {}): Promise<GenerationOutput> {
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
export async function beamSearch(model: DecodingModel, src: tf.Tensor, options: GenerateOptions = {}): Promise<GenerationOutput> {
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
export function generateStream(model: DecodingModel, src: tf.Tensor, options: GenerateOptions = {}): AsyncGenerator<GenerationStreamStep, GenerationOutput, undefined> {
  const resolved = resolveOptions(model, src, options);
  if (resolved.numBeams > 1) {
    throw new MieConfigError(errorMessage(resolved.spec.name.replace(/\.generate$/, '.generateStream'), 'option "numBeams"', 'must be 1 (beam search is not streamed; use generate())', resolved.numBeams));
  }
  return greedyOrSampleSteps(model, src, resolved);
}
