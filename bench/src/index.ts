/**
 * MIE benchmarks: `pnpm bench [--backend B] [--json] [--only a,b] [--runs N] [--torch]`.
 *
 * Prints a table (or, with --json, one JSON object per line:
 * `{ name, backend, matmul, threads, median_ms, min_ms, runs, tokens_per_s, ... }`). With --torch,
 * also runs bench/torch_reference.py (Debian's PyTorch at /usr/bin/python3, or $MIE_TORCH_PYTHON)
 * on the same shapes in the same run and prints the ratios MIE / PyTorch of time and, where both
 * report tokens/s (the generation targets' measure), of tokens/s. `--backend` picks the
 * backend (`setBackend`'s choices: `webgpu` runs in Node through the optional `webgpu` package,
 * Dawn, on the machine's Vulkan driver); by default `MIE_BACKEND` or `auto`. Every timing ends
 * with an asynchronous read of the result, so a GPU backend is timed to completion.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { BACKEND_CHOICES, getDevice, ready, setBackend, setSeed, tf, type BackendChoice } from '@mie/core';
import { EncoderDecoderTransformer, TransformerEncoderLayer } from '@mie/transformer';
import { AdamW, ShuffledBatches, Trainer, crossEntropyLoss, noDecayForBiasesAndNorms, padBatch, scaledInverseSquareRootSchedule, valueAndGradients } from '@mie/training';
import { BOS, EOS, G2PModel, PAD, architectureFor, effectiveMinutes, loadG2PSplits } from '@mie/cli';

export interface BenchResult {
  name: string;
  backend: string;
  matmul: string;
  threads: number;
  median_ms: number;
  min_ms: number;
  /** The slowest timed run (the spread is min_ms-max_ms). */
  max_ms?: number;
  /** The first (cold) call, before the warm-up finished. */
  first_ms?: number;
  runs: number;
  tokens_per_s?: number;
  [extra: string]: unknown;
}

interface Options {
  json: boolean;
  only: string[] | null;
  runs: number;
  torch: boolean;
  backend: BackendChoice | null;
}

function parseArgs(argv: string[]): Options {
  const value = (flag: string) => {
    const i = argv.indexOf(flag);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    json: argv.includes('--json'),
    only: value('--only')?.split(',') ?? null,
    runs: Number(value('--runs') ?? 5),
    torch: argv.includes('--torch'),
    backend: (value('--backend') as BackendChoice | undefined) ?? null,
  };
}

/**
 * Waits for `t` to be computed and frees it: an asynchronous read (which a GPU backend prefers)
 * of one element, which a GPU backend returns only after every op queued before it. Not the
 * whole tensor: PyTorch's side returns its result unread, and copying a `[8, 64, 10000]` output
 * out of the wasm heap cost 3-17 ms (mostly the garbage collector), 1-4% of `seed-base-forward`.
 */
async function settle(t: tf.Tensor | null | undefined): Promise<void> {
  if (!t) return;
  if (t.size > 0) {
    const first = tf.tidy(() => tf.slice(tf.reshape(t, [-1]), [0], [1]));
    await first.data();
    first.dispose();
  }
  t.dispose();
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/**
 * Warm-up before the timed runs, the same on both sides (bench/torch_reference.py): at least
 * `WARMUP_MIN_CALLS` calls and `WARMUP_MS` of them, at most `WARMUP_MAX_CALLS`. One call was not
 * enough for the JavaScript JIT: greedy generation took 3-5 calls to reach its steady speed
 * (`generate-kv-32` in a fresh process: 0.93-1.22 s, 0.51-0.61 s, 0.39-0.51 s, then 0.20-0.28 s),
 * so one warm-up timed part of the warm-up.
 * The first call's time is reported as `first_ms`.
 */
const WARMUP_MIN_CALLS = 2;
const WARMUP_MAX_CALLS = 5;
const WARMUP_MS = 1000;

/** Times `step` (which must leave no tensors behind) after the warm-up. */
async function measure(runs: number, step: () => Promise<void> | void): Promise<{ median: number; min: number; max: number; first: number }> {
  const warmupStart = performance.now();
  let first = 0;
  for (let calls = 0; calls < WARMUP_MAX_CALLS; calls++) {
    const start = performance.now();
    await step();
    if (calls === 0) first = performance.now() - start;
    if (calls + 1 >= WARMUP_MIN_CALLS && performance.now() - warmupStart >= WARMUP_MS) break;
  }
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const start = performance.now();
    await step();
    times.push(performance.now() - start);
  }
  return { median: median(times), min: Math.min(...times), max: Math.max(...times), first };
}

function result(name: string, timing: { median: number; min: number; max?: number; first?: number }, runs: number, tokens?: number, extra: Record<string, unknown> = {}): BenchResult {
  const device = getDevice();
  return {
    name,
    backend: device.backend,
    matmul: device.matmul ?? '-',
    threads: device.threads ?? 1,
    median_ms: Number(timing.median.toFixed(2)),
    min_ms: Number(timing.min.toFixed(2)),
    ...(timing.max !== undefined ? { max_ms: Number(timing.max.toFixed(2)) } : {}),
    ...(timing.first !== undefined ? { first_ms: Number(timing.first.toFixed(2)) } : {}),
    runs,
    ...(tokens ? { tokens_per_s: Number(((tokens * 1000) / timing.median).toFixed(1)) } : {}),
    ...extra,
  };
}

/** The design's example configuration. */
export const SEED_BASE = {
  srcVocabSize: 10000,
  tgtVocabSize: 10000,
  dModel: 512,
  numHeads: 8,
  numEncoderLayers: 6,
  numDecoderLayers: 6,
  dFf: 2048,
  dropout: 0.1,
  maxSeqLength: 512,
  positionalEncoding: 'sinusoidal' as const,
  shareEmbeddings: true,
};

const randomIds = (shape: [number, number], vocab: number, seed: number) =>
  tf.tidy(() => tf.cast(tf.floor(tf.randomUniform(shape, 0, vocab, 'float32', seed)), 'int32'));

/** One post-norm encoder layer (d 512, 8 heads, d_ff 2048), batch 8 x seq 128: forward + backward. */
async function encoderLayerTrain(runs: number): Promise<BenchResult[]> {
  const layer = new TransformerEncoderLayer({ dModel: 512, numHeads: 8, dFf: 2048, dropout: 0.1 });
  const x = tf.randomNormal([8, 128, 512], 0, 1, 'float32', 1);
  const forward = await measure(runs, () => settle(tf.tidy(() => layer.forward(x))));
  const train = await measure(runs, async () => {
    const { value, grads } = tf.variableGrads(() => tf.mean(layer.forward(x)) as tf.Scalar, layer.trainableParameters());
    tf.dispose(Object.values(grads));
    await settle(value);
  });
  x.dispose();
  layer.dispose();
  return [result('encoder-layer-forward', forward, runs, 8 * 128), result('encoder-layer-train', train, runs, 8 * 128)];
}

/** Cross entropy of logits [b, t, V] against int32 targets [b, t]. */
function crossEntropy(logits: tf.Tensor, targets: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const vocab = logits.shape[2] as number;
    const flat = tf.reshape(logits, [-1, vocab]);
    const logProbs = tf.logSoftmax(flat);
    const picked = tf.sum(tf.mul(logProbs, tf.oneHot(tf.reshape(targets, [-1]), vocab)), -1);
    return tf.neg(tf.mean(picked)) as tf.Scalar;
  });
}

/** The design's example model, batch 8, source and target length 64: forward, and a training step with MIE's Adam(W) and cross entropy. */
async function seedBase(runs: number): Promise<BenchResult[]> {
  const model = new EncoderDecoderTransformer(SEED_BASE);
  const src = randomIds([8, 64], 10000, 2);
  const tgt = randomIds([8, 64], 10000, 3);
  const targets = randomIds([8, 64], 10000, 4);
  model.eval();
  const forward = await measure(runs, () => settle(tf.tidy(() => model.forward(src, tgt))));
  model.train();
  // MIE's own training step, as PyTorch's is torch.optim.Adam and F.cross_entropy: AdamW with no
  // weight decay is Adam; crossEntropyLoss is the library's loss.
  const optimizer = new AdamW(model, { lr: 1e-4, weightDecay: 0 });
  const train = await measure(runs, async () => {
    const { value, grads } = valueAndGradients(model, () => crossEntropyLoss(model.forward(src, tgt), targets));
    optimizer.step(grads);
    tf.dispose(Object.values(grads));
    await settle(value);
  });
  optimizer.dispose();
  tf.dispose([src, tgt, targets]);
  model.dispose();
  return [result('seed-base-forward', forward, runs, 8 * 64), result('seed-base-train', train, runs, 8 * 64)];
}

/**
 * Greedy generation with key/value caches from the design's example model (untrained, so no
 * EOS: exactly N tokens), batch 1, source length 64: 32 and 256 new tokens. The per-token cost
 * must stay flat: the 256-token run under 10x the 32-token run.
 */
async function generateKv(runs: number): Promise<BenchResult[]> {
  const model = new EncoderDecoderTransformer(SEED_BASE).eval();
  const src = randomIds([1, 64], 10000, 7);
  const results: BenchResult[] = [];
  const timings: Record<number, number> = {};
  for (const tokens of [32, 256]) {
    const timing = await measure(Math.max(1, Math.min(runs, tokens > 100 ? 2 : runs)), async () => {
      const { sequences } = await model.generate(src, { bosTokenId: 1, eosTokenId: null, maxNewTokens: tokens });
      if (sequences[0].length !== tokens) throw new Error(`generate-kv: expected ${tokens} tokens, got ${sequences[0].length}`);
    });
    timings[tokens] = timing.median;
    results.push(result(`generate-kv-${tokens}`, timing, runs, tokens));
  }
  results[1].ratio_to_32 = Number((timings[256] / timings[32]).toFixed(2));
  src.dispose();
  model.dispose();
  return results;
}

/** Tensors and bytes held after 200 training steps equal those after 10 (a small model). */
async function memory(): Promise<BenchResult[]> {
  const model = new EncoderDecoderTransformer({ ...SEED_BASE, srcVocabSize: 500, tgtVocabSize: 500, dModel: 64, numHeads: 4, numEncoderLayers: 2, numDecoderLayers: 2, dFf: 128 });
  const src = randomIds([4, 16], 500, 5);
  const tgt = randomIds([4, 16], 500, 6);
  const optimizer = tf.train.adam(1e-3);
  const held: Record<number, { tensors: number; bytes: number }> = {};
  const start = performance.now();
  for (let step = 1; step <= 200; step++) {
    const loss = optimizer.minimize(() => crossEntropy(model.forward(src, tgt), tgt), true, model.trainableParameters());
    loss?.dispose();
    if (step === 10 || step === 200) held[step] = { tensors: tf.memory().numTensors, bytes: tf.memory().numBytes };
  }
  const elapsed = performance.now() - start;
  optimizer.dispose();
  tf.dispose([src, tgt]);
  model.dispose();
  return [
    result('memory', { median: elapsed / 200, min: elapsed / 200 }, 200, undefined, {
      tensors_after_10: held[10].tensors,
      tensors_after_200: held[200].tensors,
      bytes_after_10: held[10].bytes,
      bytes_after_200: held[200].bytes,
      flat: held[10].tensors === held[200].tensors && held[10].bytes === held[200].bytes,
    }),
  ];
}

/**
 * The products a transformer spends its time in, one call each (same operands every call),
 * reported in GFLOP/s: a dense layer's forward (x Wᵀ) and weight gradient (xᵀ dy) at d 512 /
 * d_ff 2048 with 512 rows, the vocabulary projection, and batched attention scores.
 */
async function matmul(runs: number): Promise<BenchResult[]> {
  const cases: Array<[string, number[], number[], boolean, boolean]> = [
    ['matmul-dense-forward', [512, 512], [2048, 512], false, true],
    ['matmul-weight-grad', [512, 512], [512, 2048], true, false],
    ['matmul-vocab', [512, 512], [10000, 512], false, true],
    ['matmul-attention', [64, 64, 64], [64, 64, 64], false, true],
  ];
  const results: BenchResult[] = [];
  for (const [name, aShape, bShape, transposeA, transposeB] of cases) {
    const a = tf.randomNormal(aShape, 0, 1, 'float32', 1);
    const b = tf.randomNormal(bShape, 0, 1, 'float32', 2);
    const rank = aShape.length;
    const [m, k] = transposeA ? [aShape[rank - 1], aShape[rank - 2]] : [aShape[rank - 2], aShape[rank - 1]];
    const n = transposeB ? bShape[rank - 2] : bShape[rank - 1];
    const flops = 2 * m * n * k * (rank === 3 ? aShape[0] : 1);
    const timing = await measure(Math.max(runs, 10), () => settle(tf.matMul(a, b, transposeA, transposeB)));
    results.push(result(name, timing, Math.max(runs, 10), undefined, { gflops: Number((flops / timing.median / 1e6).toFixed(1)) }));
    tf.dispose([a, b]);
  }
  return results;
}

/**
 * Kernel dispatches in one training step of `mie train g2p`'s default run (the model its 10
 * minutes pick on this device, or `MIE_BENCH_MINUTES`' budget, CMU dictionary batches of 1400 tokens, AdamW, label smoothing,
 * clipping: the same Trainer set-up as packages/cli/src/train-g2p.ts), counted by wrapping the
 * engine's one entry point for kernels, with the median time of a step. Each dispatch costs about
 * 10 µs here besides its arithmetic (tape node, saved copies), so the count is a cost of its own.
 * Prints the top kernels with the time spent inside their calls.
 */
async function opsPerStep(runs: number): Promise<BenchResult[]> {
  const steps = Math.max(runs, 10);
  const warmup = 3;
  const splits = loadG2PSplits();
  const transformer = architectureFor(effectiveMinutes(Number(process.env.MIE_BENCH_MINUTES ?? 10), getDevice()));
  const model = new G2PModel({ phonemes: [...new Set(splits.train.flatMap((e) => e.pronunciations.flat()))].sort(), transformer });
  const pairs = splits.train.flatMap((e) => e.pronunciations.map((p) => ({ src: model.encodeWord(e.word), tgt: model.encodePronunciation(p) })));
  type Batch = { src: tf.Tensor; tgtIn: tf.Tensor; tgtOut: tf.Tensor; tokens: number };
  const data = new ShuffledBatches<Batch>({
    size: pairs.length,
    lengths: pairs.map((p) => Math.max(p.src.length, p.tgt.length + 1)),
    maxTokens: 1400,
    seed: 1,
    makeBatch: (indices) => {
      const src = padBatch(indices.map((i) => pairs[i].src), PAD);
      const tgtIn = padBatch(indices.map((i) => [BOS, ...pairs[i].tgt]), PAD);
      const tgtOut = padBatch(indices.map((i) => [...pairs[i].tgt, EOS]), PAD);
      tf.dispose([src.mask, tgtIn.mask, tgtOut.mask]);
      return { src: src.ids, tgtIn: tgtIn.ids, tgtOut: tgtOut.ids, tokens: indices.reduce((n, i) => n + pairs[i].tgt.length + 1, 0) };
    },
  });
  const optimizer = new AdamW(model, { lr: 1e-3, betas: [0.9, 0.98], weightDecay: 0.01, noDecay: noDecayForBiasesAndNorms });
  // Every kernel an op dispatches passes through the engine's runKernelFunc (private in the types).
  const engine = tf.engine() as unknown as { runKernelFunc: (params: { kernelName?: string }) => unknown };
  const original = engine.runKernelFunc;
  let counts = new Map<string, number>();
  const times = new Map<string, number>();
  engine.runKernelFunc = function (this: unknown, params: { kernelName?: string }) {
    // Without a kernel name: a customGrad scope, whose ops come through here on their own.
    if (params.kernelName === undefined) return original.call(this, params);
    counts.set(params.kernelName, (counts.get(params.kernelName) ?? 0) + 1);
    const start = performance.now();
    const out = original.call(this, params);
    times.set(params.kernelName, (times.get(params.kernelName) ?? 0) + performance.now() - start);
    return out;
  };
  const perStep: Array<{ ms: number; tokens: number; counts: Map<string, number> }> = [];
  let last = performance.now();
  let tokens = 0;
  const trainer = new Trainer<G2PModel, Batch>({
    model,
    data,
    optimizer,
    schedule: scaledInverseSquareRootSchedule({ peakLr: 2e-3, warmupSteps: 200 }),
    loss: (m, batch) => crossEntropyLoss(m.forward(batch.src, batch.tgtIn), batch.tgtOut, { ignoreIndex: PAD, labelSmoothing: 0.1 }),
    maxSteps: warmup + steps,
    clipGradNorm: 1,
    seed: 1,
    progress: 'none',
    log: () => {},
    countTokens: (batch) => {
      tokens = batch.tokens;
      return batch.tokens;
    },
    onStep: (record) => {
      const now = performance.now();
      if (record.step > warmup) perStep.push({ ms: now - last, tokens, counts });
      else times.clear();
      counts = new Map();
      last = now;
    },
  });
  try {
    await trainer.fit();
  } finally {
    engine.runKernelFunc = original;
    optimizer.dispose();
    model.dispose();
  }
  const total = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
  const ops = median(perStep.map((s) => total(s.counts)));
  const byKernel = new Map<string, number>();
  for (const s of perStep) for (const [name, n] of s.counts) byKernel.set(name, (byKernel.get(name) ?? 0) + n / perStep.length);
  const top = [...byKernel].sort((a, b) => b[1] - a[1]).slice(0, 25).map(([name, n]) => [name, Math.round(n)] as const);
  const kernelMs = [...times.values()].reduce((a, b) => a + b, 0) / perStep.length;
  if (!process.argv.includes('--json')) {
    console.log(`ops-per-step: ${ops} kernel dispatches per step (median of ${perStep.length} steps), ${kernelMs.toFixed(1)} ms a step inside them; top kernels (count, ms a step):`);
    console.log(top.map(([name, n]) => `  ${name.padEnd(22)} ${String(n).padStart(5)} ${((times.get(name) ?? 0) / perStep.length).toFixed(1).padStart(7)} ms`).join('\n'));
  }
  const ms = perStep.map((s) => s.ms);
  return [
    result('ops-per-step', { median: median(ms), min: Math.min(...ms) }, perStep.length, median(perStep.map((s) => s.tokens)), {
      ops_per_step: ops,
      kernel_ms: Number(kernelMs.toFixed(1)),
      top_kernels: Object.fromEntries(top),
    }),
  ];
}

const BENCHMARKS: Record<string, (runs: number) => Promise<BenchResult[]>> = {
  matmul,
  'encoder-layer-train': encoderLayerTrain,
  'seed-base': seedBase,
  'generate-kv': generateKv,
  memory: () => memory(),
  'ops-per-step': opsPerStep,
};

/** Runs bench/torch_reference.py and returns its results by name (empty when PyTorch is missing). */
function torchReference(names: string[], runs: number): Map<string, BenchResult> {
  const python = process.env.MIE_TORCH_PYTHON ?? '/usr/bin/python3';
  const script = path.join(__dirname, '..', 'torch_reference.py');
  const run = spawnSync(python, [script, '--runs', String(runs), '--only', names.join(',')], { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (run.status !== 0) {
    console.error(`PyTorch reference unavailable (${python}): ${(run.stderr || run.error?.message || '').trim().split('\n').pop()}`);
    return new Map();
  }
  const lines = run.stdout.split('\n').filter((line) => line.startsWith('{'));
  return new Map(lines.map((line) => JSON.parse(line) as BenchResult).map((r) => [r.name, r]));
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  if (options.backend !== null && !BACKEND_CHOICES.includes(options.backend)) {
    throw new Error(`--backend must be one of ${BACKEND_CHOICES.join(', ')}; got ${JSON.stringify(options.backend)}`);
  }
  if (options.backend !== null) await setBackend(options.backend);
  else await ready();
  setSeed(0);
  const selected = Object.keys(BENCHMARKS).filter((name) => !options.only || options.only.some((o) => name.startsWith(o) || o.startsWith(name)));
  const results: BenchResult[] = [];
  for (const name of selected) {
    for (const r of await BENCHMARKS[name](options.runs)) {
      results.push(r);
      if (options.json) console.log(JSON.stringify(r));
    }
  }
  const torch = options.torch ? torchReference(results.map((r) => r.name), options.runs) : new Map<string, BenchResult>();
  if (options.json) {
    for (const r of torch.values()) console.log(JSON.stringify(r));
    return;
  }
  const device = getDevice();
  const gpu = device.gpu ? [device.gpu.vendor, device.gpu.architecture, device.gpu.description].filter(Boolean).join(' ') || `WebGL ${device.gpu.webglVersion}` : '';
  console.log(
    device.kind === 'gpu'
      ? `MIE on ${device.backend} (GPU: ${gpu || 'unknown'})`
      : `MIE on ${device.backend} (matmul: ${device.matmul ?? '-'}${device.blasLibrary ? `, ${device.blasLibrary}` : ''}${device.gemmKernel ? `, kernel ${device.gemmKernel}` : ''}, threads ${device.threads ?? 1})`,
  );
  const rows = results.map((r) => {
    const t = torch.get(r.name);
    return {
      benchmark: r.name,
      'median ms': r.median_ms,
      'min-max ms': r.max_ms !== undefined ? `${r.min_ms}-${r.max_ms}` : '',
      'first ms': r.first_ms ?? '',
      'tokens/s': r.tokens_per_s ?? '',
      'torch ms': t?.median_ms ?? '',
      'torch min-max ms': t?.max_ms !== undefined ? `${t.min_ms}-${t.max_ms}` : '',
      'torch first ms': t?.first_ms ?? '',
      'torch tokens/s': t?.tokens_per_s ?? '',
      'MIE / torch (time)': t ? Number((r.median_ms / t.median_ms).toFixed(2)) : '',
      'MIE / torch (tokens/s)': r.tokens_per_s && t?.tokens_per_s ? Number((r.tokens_per_s / t.tokens_per_s).toFixed(2)) : '',
      notes:
        r.gflops !== undefined
          ? `${r.gflops} GFLOP/s${t?.gflops !== undefined ? ` (torch ${t.gflops})` : ''}`
          : r.name === 'memory'
          ? `tensors ${r.tensors_after_10} -> ${r.tensors_after_200}, bytes ${r.bytes_after_10} -> ${r.bytes_after_200}`
          : r.ratio_to_32 !== undefined
            ? `${r.ratio_to_32}x the 32-token run`
            : '',
    };
  });
  console.table(rows);
}

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
