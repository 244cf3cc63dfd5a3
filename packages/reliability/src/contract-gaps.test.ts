/**
 * Small contract gaps, each a typed MieError naming the call and the argument, fast, leaking
 * nothing, with the backend healthy afterwards: special files in place of checkpoint files (a
 * FIFO made `load` hang forever), bad arguments to `load`, calls on disposed models, unbounded
 * `loadStateDict` messages, and the default `maxNewTokens` on short models.
 */
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, CONFIG_FILE, MieConfigError, MieError, MieSerializationError, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, setBackend, setSeed, tf } from '@mie/core';
import { EncoderDecoderTransformer, TransformerEncoder } from '@mie/transformer';
import { expectBackendHealthy, testBackend } from './helpers';

let root: string;
const small = () => new EncoderDecoderTransformer({ srcVocabSize: 11, tgtVocabSize: 11, dModel: 8, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 16, maxSeqLength: 10 });

beforeAll(async () => {
  await setBackend(testBackend());
  setSeed(2);
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-gaps-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

async function refused<E extends MieError>(type: new (...args: never[]) => E, run: () => unknown, message: RegExp): Promise<void> {
  const before = tf.memory().numTensors;
  const start = performance.now();
  let error: unknown;
  try {
    await run();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(type);
  expect((error as Error).message).toMatch(message);
  expect(performance.now() - start).toBeLessThan(2000);
  expect(tf.memory().numTensors).toBe(before);
  expectBackendHealthy();
}

describe('special files in place of checkpoint files', () => {
  const saved = async (name: string, options?: { maxShardSize: number }) => {
    const dir = path.join(root, name);
    const model = small();
    await model.save(dir, options);
    model.dispose();
    return dir;
  };
  const replace = (file: string, kind: 'fifo' | 'directory' | 'device') => {
    fs.rmSync(file);
    if (kind === 'fifo') execFileSync('mkfifo', [file]);
    else if (kind === 'directory') fs.mkdirSync(file);
    else fs.symlinkSync('/dev/zero', file);
  };

  it.each(['fifo', 'directory', 'device'] as const)('a %s as config.json, model.safetensors, the index or a shard', async (kind) => {
    const received = { fifo: 'a FIFO', directory: 'a directory', device: 'a device or other special file' }[kind];
    for (const file of [CONFIG_FILE, WEIGHTS_FILE]) {
      const dir = await saved(`${kind}-${file}`);
      replace(path.join(dir, file), kind);
      await refused(MieSerializationError, () => BaseModel.load(dir), new RegExp(`${file.replace('.', '\\.')} must be a regular file\\. Received: ${received}`));
    }
    const sharded = await saved(`${kind}-sharded`, { maxShardSize: 600 });
    const shard = fs.readdirSync(sharded).find((f) => f.startsWith('model-'))!;
    replace(path.join(sharded, shard), kind);
    await refused(MieSerializationError, () => BaseModel.load(sharded), /must be a regular file/);
    const index = await saved(`${kind}-index`, { maxShardSize: 600 });
    replace(path.join(index, WEIGHTS_INDEX_FILE), kind);
    await refused(MieSerializationError, () => BaseModel.load(index), /model\.safetensors\.index\.json must be a regular file/);
  });
});

describe('bad arguments and disposed models', () => {
  it('load of a non-string, fromBuffers of a non-object', async () => {
    for (const dir of [123, null, undefined, {}, ['x'], '']) {
      await refused(MieSerializationError, () => BaseModel.load(dir as never), /BaseModel\.load: the directory must be a non-empty string path/);
    }
    await refused(MieSerializationError, () => EncoderDecoderTransformer.fromBuffers(42 as never), /EncoderDecoderTransformer\.fromBuffers: expected \{ config: Uint8Array, weights: Uint8Array \}/);
  });

  it('forward, generate, generateStream, save and toBuffers of a disposed model', async () => {
    const model = small();
    const src = tf.ones([1, 3], 'int32');
    model.dispose();
    await refused(MieConfigError, () => model.forward(src, src), /EncoderDecoderTransformer\.forward: the module was disposed/);
    await refused(MieConfigError, () => model.generate(src, { bosTokenId: 1 }), /EncoderDecoderTransformer\.generate: the module was disposed/);
    await refused(MieConfigError, () => model.generateStream(src, { bosTokenId: 1 }), /generateStream: the module was disposed/);
    await refused(MieConfigError, () => model.save(path.join(root, 'disposed')), /save: the module was disposed/);
    const x = tf.zeros([1, 2, 8]);
    await refused(MieConfigError, () => model.encoder.layers[0].forward(x), /TransformerEncoderLayer\.forward: the module was disposed/);
    expect(fs.existsSync(path.join(root, 'disposed'))).toBe(false);
    tf.dispose([src, x]);
  });
});

describe('bounded messages and defaults', () => {
  it('loadStateDict names the first problems of a 12,000-layer state and counts the rest', async () => {
    const model = new TransformerEncoder({ vocabSize: 10, dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, maxSeqLength: 8 });
    const value = tf.zeros([1]);
    const state: Record<string, tf.Tensor> = {};
    for (let i = 0; i < 12_000; i++) for (const name of ['linear1.weight', 'linear2.weight', 'norm1.weight']) state[`layers.${i}.${name}`] = value;
    let message = '';
    await refused(MieSerializationError, () => {
      try {
        model.loadStateDict(state);
      } catch (error) {
        message = (error as Error).message;
        throw error;
      }
    }, /and \d+ more/);
    expect(message.length).toBeLessThan(2000);
    value.dispose();
    model.dispose();
  });

  it('the default maxNewTokens fits a model whose maxSeqLength is below 20', async () => {
    const model = small().eval();
    const src = tf.ones([2, 3], 'int32');
    const { sequences } = await model.generate(src, { bosTokenId: 1 });
    expect(sequences.map((s) => s.length)).toEqual([10, 10]);
    src.dispose();
    model.dispose();
  });
});
