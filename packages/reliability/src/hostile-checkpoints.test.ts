/**
 * Hostile checkpoints on the whole load path (`BaseModel.load` / `fromBuffers`, reading
 * config.json, the safetensors file and its embedded config, rebuilding the registered class):
 * every mutation of a valid checkpoint either loads or fails with a MieSerializationError, fast,
 * without allocating much more than the file, without leaking tensors and without running code
 * from the file. (safetensors.test.ts in @mie/core fuzzes the reader alone.)
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import fc from 'fast-check';
import { BaseModel, MieError, MieSerializationError, setBackend, setSeed, tf, writeSafetensors, type CheckpointBuffers } from '@mie/core';
import { EncoderDecoderTransformer } from '@mie/transformer';
import { testBackend } from './helpers';

const TIME_LIMIT_MS = 2000;
const MEMORY_SLACK = 64 * 1024 * 1024;

let good: CheckpointBuffers;
let header: Record<string, unknown>;
let root: string;

beforeAll(async () => {
  await setBackend(testBackend());
  setSeed(5);
  const model = new EncoderDecoderTransformer({ srcVocabSize: 11, tgtVocabSize: 11, dModel: 8, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 16, maxSeqLength: 16 });
  good = model.toBuffers();
  model.dispose();
  header = JSON.parse(new TextDecoder().decode(good.config));
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-hostile-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Loads `buffers`; returns 'loaded' or the MieSerializationError, and checks time, memory and leaks. */
function attempt(buffers: CheckpointBuffers): 'loaded' | MieSerializationError {
  const tensorsBefore = tf.memory().numTensors;
  const memoryBefore = process.memoryUsage();
  const start = performance.now();
  let outcome: 'loaded' | MieSerializationError;
  try {
    BaseModel.fromBuffers(buffers).dispose();
    outcome = 'loaded';
  } catch (error) {
    if (!(error instanceof MieSerializationError)) {
      throw new Error(`a hostile checkpoint raised ${(error as Error)?.name}: ${(error as Error)?.message}`);
    }
    outcome = error;
  }
  const elapsed = performance.now() - start;
  const memoryAfter = process.memoryUsage();
  const grown = memoryAfter.arrayBuffers - memoryBefore.arrayBuffers + memoryAfter.heapUsed - memoryBefore.heapUsed;
  expect(elapsed).toBeLessThan(TIME_LIMIT_MS);
  expect(grown).toBeLessThan(MEMORY_SLACK + 8 * (buffers.weights.length + buffers.config.length));
  expect(tf.memory().numTensors).toBe(tensorsBefore);
  return outcome;
}

const rejected = (buffers: CheckpointBuffers, message?: RegExp): MieSerializationError => {
  const outcome = attempt(buffers);
  if (outcome === 'loaded') throw new Error('expected the checkpoint to be rejected, but it loaded');
  expect(outcome.message.length).toBeGreaterThan(30);
  if (message) expect(outcome.message).toMatch(message);
  return outcome;
};

/** The regions of the safetensors file: length field, header, then each tensor's bytes. */
function regions(weights: Uint8Array): number[] {
  const headerLength = Number(new DataView(weights.buffer, weights.byteOffset).getBigUint64(0, true));
  const parsed = JSON.parse(new TextDecoder().decode(weights.subarray(8, 8 + headerLength))) as Record<string, { data_offsets?: number[] }>;
  const starts = Object.values(parsed).flatMap((e) => e.data_offsets ?? []).map((o) => 8 + headerLength + o);
  return [...new Set([0, 4, 8, 9, 8 + headerLength - 1, 8 + headerLength, ...starts, weights.length - 1])].sort((a, b) => a - b);
}

/** Rewrites the safetensors header (a JSON object) of `weights` with `edit`. */
function withHeader(weights: Uint8Array, edit: (h: Record<string, Record<string, unknown>>) => void, data?: Uint8Array): Uint8Array {
  const headerLength = Number(new DataView(weights.buffer, weights.byteOffset).getBigUint64(0, true));
  const parsed = JSON.parse(new TextDecoder().decode(weights.subarray(8, 8 + headerLength)));
  edit(parsed);
  const text = new TextEncoder().encode(JSON.stringify(parsed));
  const body = data ?? weights.subarray(8 + headerLength);
  const out = new Uint8Array(8 + text.length + body.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(text.length), true);
  out.set(text, 8);
  out.set(body, 8 + text.length);
  return out;
}

const firstTensor = (h: Record<string, Record<string, unknown>>): Record<string, unknown> => h[Object.keys(h).find((k) => k !== '__metadata__')!];
const config = (h: Record<string, unknown>): CheckpointBuffers => ({ config: new TextEncoder().encode(JSON.stringify(h)), weights: good.weights });

describe('the weights file', () => {
  it('loads the valid checkpoint (the baseline of every mutation)', () => {
    expect(attempt(good)).toBe('loaded');
  });

  it('rejects a truncation at every region boundary and at 64 other points', () => {
    const cuts = new Set(regions(good.weights).flatMap((r) => [r - 1, r, r + 1]).filter((c) => c >= 0 && c < good.weights.length));
    for (let i = 1; i <= 64; i++) cuts.add(Math.floor((good.weights.length * i) / 65));
    for (const cut of cuts) rejected({ config: good.config, weights: good.weights.slice(0, cut) });
  });

  it('rejects or loads every random byte flip, in every region', () => {
    const points = regions(good.weights);
    fc.assert(
      fc.property(fc.integer({ min: 0, max: points.length - 1 }), fc.integer({ min: 0, max: 64 }), fc.integer({ min: 1, max: 255 }), (region, delta, mask) => {
        const at = Math.min(points[region] + delta, good.weights.length - 1);
        const weights = good.weights.slice();
        weights[at] ^= mask;
        attempt({ config: good.config, weights });
      }),
      { seed: 21, numRuns: 400 },
    );
  });

  it('rejects huge declared header lengths and shapes without allocating them', () => {
    for (const length of [2n ** 64n - 1n, 2n ** 63n, 100_000_001n, BigInt(good.weights.length)]) {
      const weights = good.weights.slice();
      new DataView(weights.buffer).setBigUint64(0, length, true);
      rejected({ config: good.config, weights }, /header length/);
    }
    rejected({ config: good.config, weights: withHeader(good.weights, (h) => (firstTensor(h).shape = [2 ** 40, 2 ** 40])) }, /byte size/);
    rejected({ config: good.config, weights: withHeader(good.weights, (h) => (firstTensor(h).shape = [Number.MAX_SAFE_INTEGER])) }, /byte size/);
    rejected({ config: good.config, weights: withHeader(good.weights, (h) => (firstTensor(h).shape = [1e300])) }, /shape/);
  });

  it('rejects offsets past the end, duplicate names and wrong dtypes', () => {
    rejected({ config: good.config, weights: withHeader(good.weights, (h) => (firstTensor(h).data_offsets = [0, 2 ** 50])) }, /data_offsets/);
    for (const dtype of ['F8_E4M3', 'float32', 'X', 7, null]) {
      rejected({ config: good.config, weights: withHeader(good.weights, (h) => (firstTensor(h).dtype = dtype)) }, /dtype/);
    }
    rejected({ config: good.config, weights: withHeader(good.weights, (h) => (firstTensor(h).dtype = 'F16')) }, /byte size/);
    // A duplicate key, written by hand since JSON.stringify cannot.
    const headerLength = Number(new DataView(good.weights.buffer).getBigUint64(0, true));
    const text = new TextDecoder().decode(good.weights.subarray(8, 8 + headerLength));
    const name = text.match(/"(encoder\.[^"]+)":\{/)![1];
    const headerBytes = new TextEncoder().encode(text.replace(`"${name}":{`, `"${name}":{"dtype":"F32","shape":[0],"data_offsets":[0,0]},"${name}":{`));
    const duplicated = new Uint8Array(8 + headerBytes.length + good.weights.length - 8 - headerLength);
    new DataView(duplicated.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
    duplicated.set(headerBytes, 8);
    duplicated.set(good.weights.subarray(8 + headerLength), 8 + headerBytes.length);
    rejected({ config: good.config, weights: duplicated }, /duplicate/);
  });

  it('rejects weights of another architecture, missing and extra tensors', () => {
    const other = new EncoderDecoderTransformer({ srcVocabSize: 11, tgtVocabSize: 11, dModel: 8, numHeads: 2, numEncoderLayers: 2, numDecoderLayers: 1, dFf: 16, maxSeqLength: 16 });
    const state = other.stateDict();
    const withoutId = (tensors: Record<string, tf.Tensor>) => ({ config: good.config, weights: writeSafetensors(tensors, { 'mie.checkpointId': header.checkpointId as string }) });
    rejected(withoutId(state), /unexpected keys: "encoder\.layers\.1/);
    const partial = Object.fromEntries(Object.entries(state).filter(([k]) => !k.startsWith('decoder.')));
    rejected(withoutId(partial), /missing keys: "decoder/);
    other.dispose();
  });

  it('never evaluates code from the embedded config (class names and prototypes are data)', () => {
    const marker = '__mieHostileRan';
    for (const className of ['constructor', '__proto__', 'toString', `x"); globalThis.${marker} = 1; ("`, 'Function']) {
      rejected(config({ ...header, className }), /is not registered/);
    }
    rejected(config({ ...header, config: JSON.parse(`{"__proto__": {"dModel": 8, "polluted": true}}`) }));
    expect((globalThis as Record<string, unknown>)[marker]).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});

describe('config.json', () => {
  const fields = ['format', 'formatVersion', 'className', 'config', 'checkpointId', 'versions'];
  const wrongValues: unknown[] = [null, 7, -1, 1.5, 'x', '', [], [1], {}, { a: { b: 1 } }, true, 2 ** 60];

  it.each(fields)('rejects a missing or wrongly typed field "%s" (or ignores it where it is optional)', (field) => {
    const without = { ...header };
    delete without[field];
    const outcome = attempt(config(without));
    if (field !== 'versions') expect(outcome).toBeInstanceOf(MieSerializationError);
    for (const value of wrongValues) attempt(config({ ...header, [field]: value }));
  });

  it('rejects an unregistered class and a class of another kind', () => {
    rejected(config({ ...header, className: 'GPT5' }), /class "GPT5" is not registered \(registered: .*EncoderDecoderTransformer/);
    rejected(config({ ...header, className: 'FeedForwardNN' }));
  });

  it('rejects model options of the wrong type, out of range, or sizes the checkpoint cannot have', () => {
    const modelConfig = header.config as Record<string, unknown>;
    for (const [key, value] of [['dModel', '8'], ['numHeads', 3], ['dFf', -1], ['activation', 'swish'], ['unknownOption', 1], ['dropout', 2]] as const) {
      rejected(config({ ...header, config: { ...modelConfig, [key]: value } }), /EncoderDecoderTransformer/);
    }
    // Sizes that would allocate gigabytes before the weights are found not to match.
    for (const [key, value] of [['srcVocabSize', 1e9], ['dFf', 2 ** 31], ['maxSeqLength', 1e8], ['numEncoderLayers', 1e6]] as const) {
      rejected(config({ ...header, config: { ...modelConfig, [key]: value } }), new RegExp(`config\\.${key}" is`));
    }
  });

  it('falls back to the config embedded in the weights, and rejects a hostile embedded config', () => {
    // config.json from another save: the embedded config describes the weights and wins.
    expect(attempt(config({ ...header, checkpointId: 'another', className: 'Nonsense' }))).toBe('loaded');
    const embedded = (text: string) => ({
      config: good.config,
      weights: withHeader(good.weights, (h) => {
        h.__metadata__ = { 'mie.checkpointId': 'other', 'mie.config': text };
      }),
    });
    rejected(embedded('{"format":"mie"'), /config embedded in model\.safetensors/);
    rejected(embedded(JSON.stringify({ ...header, className: 'Nope' })), /not registered/);
    rejected(embedded(JSON.stringify({ ...header, config: { ...(header.config as object), dModel: 16 } })), /shape/);
  });

  it('fuzzes config.json with arbitrary JSON values: load or MieSerializationError', () => {
    fc.assert(
      fc.property(fc.constantFrom(...fields, 'config.dModel', 'config.numHeads', 'config.padTokenId', 'config.positionalEncoding'), fc.jsonValue({ maxDepth: 3 }), (field, value) => {
        const copy = structuredClone(header) as Record<string, Record<string, unknown>>;
        if (field.startsWith('config.')) copy.config[field.slice(7)] = value;
        else (copy as Record<string, unknown>)[field] = value;
        attempt(config(copy));
      }),
      { seed: 34, numRuns: 300 },
    );
  });
});

describe('BaseModel.load from disk', () => {
  const write = (dir: string, buffers: Partial<CheckpointBuffers>) => {
    fs.mkdirSync(dir, { recursive: true });
    if (buffers.config) fs.writeFileSync(path.join(dir, 'config.json'), buffers.config);
    if (buffers.weights) fs.writeFileSync(path.join(dir, 'model.safetensors'), buffers.weights);
    return dir;
  };

  it('rejects truncated, missing, empty and directory-shaped files with MieSerializationError', async () => {
    const cases: Array<[string, () => string]> = [
      ['truncated weights', () => write(path.join(root, 'a'), { config: good.config, weights: good.weights.slice(0, 100) })],
      ['empty weights', () => write(path.join(root, 'b'), { config: good.config, weights: new Uint8Array() })],
      ['empty config', () => write(path.join(root, 'c'), { config: new Uint8Array(), weights: good.weights })],
      ['no weights', () => write(path.join(root, 'd'), { config: good.config })],
      ['weights is a directory', () => {
        const dir = write(path.join(root, 'e'), { config: good.config });
        fs.mkdirSync(path.join(dir, 'model.safetensors'));
        return dir;
      }],
      ['a file instead of a directory', () => {
        fs.writeFileSync(path.join(root, 'f'), 'x');
        return path.join(root, 'f');
      }],
    ];
    for (const [label, make] of cases) {
      const dir = make();
      const before = tf.memory().numTensors;
      const error = await BaseModel.load(dir).then(() => undefined, (e: unknown) => e);
      expect([label, error instanceof MieSerializationError]).toEqual([label, true]);
      expect((error as MieError).message).toContain(dir);
      expect(tf.memory().numTensors).toBe(before);
    }
  });
});
