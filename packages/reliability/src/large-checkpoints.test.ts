/**
 * Checkpoints of more than 2 GiB save and load (cpu backend: the wasm heap holds at most 4 GiB,
 * model and file together do not fit there). Before, `load` read the weights with one `read` of
 * more than 2^31 - 1 bytes, which kills Node (SIGABRT), and `save` could not write a model of
 * more than ~537M parameters, nor a Trainer checkpoint (weights and two moments) of more than
 * ~179M. Runs in the cpu project only (see jest.config.js).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, Module, WEIGHTS_FILE, WEIGHTS_INDEX_FILE, parameter, registerModel, setBackend, tf } from '@mie/core';
import { expectBackendHealthy } from './helpers';

/** `tensors` parameters of `size` floats each, tensor k filled with k + 1 and its last value -k. */
class Big extends BaseModel<{ tensors: number; size: number }> {
  readonly config: { tensors: number; size: number };
  readonly blocks: Block[];
  constructor(config: { tensors: number; size: number }) {
    super();
    this.config = { ...config };
    this.blocks = Array.from({ length: config.tensors }, (_, k) => new Block(config.size, k));
  }
  forward(): tf.Tensor {
    return tf.scalar(0);
  }
}
class Block extends Module {
  readonly weight: tf.Variable;
  constructor(size: number, k: number) {
    super();
    this.weight = parameter([size], (shape) => {
      const values = new Float32Array(shape[0]).fill(k + 1);
      values[values.length - 1] = -k;
      return tf.tensor1d(values);
    });
  }
  forward(): tf.Tensor {
    return this.weight;
  }
}
registerModel(Big);

/** First and last value of every parameter: what the fill pattern makes checkable. */
const signature = (model: Big) => model.blocks.map((b) => { const v = b.weight.dataSync(); return [v[0], v[v.length - 1], v.length]; });

let root: string;
beforeAll(async () => {
  await setBackend('cpu');
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-large-'));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

it('a 2.4 GB model saves to one file and to Hugging Face shards, and both load', async () => {
  const config = { tensors: 6, size: 100_000_000 }; // 600M parameters, 2.4 GB
  const model = new Big(config);
  const expected = signature(model);
  const single = path.join(root, 'single');
  let start = performance.now();
  await model.save(single);
  const saveSeconds = (performance.now() - start) / 1000;
  const size = fs.statSync(path.join(single, WEIGHTS_FILE)).size;
  expect(size).toBeGreaterThan(2 ** 31);
  start = performance.now();
  const loaded = (await BaseModel.load(single)) as Big;
  const loadSeconds = (performance.now() - start) / 1000;
  expect(signature(loaded)).toEqual(expected);
  loaded.dispose();

  const sharded = path.join(root, 'sharded');
  await model.save(sharded, { maxShardSize: 1e9 });
  const shards = fs.readdirSync(sharded).filter((f) => /^model-\d{5}-of-00003\.safetensors$/.test(f));
  expect(shards).toHaveLength(3);
  expect(JSON.parse(fs.readFileSync(path.join(sharded, WEIGHTS_INDEX_FILE), 'utf8')).metadata.total_size).toBe(2.4e9);
  const fromShards = (await Big.load(sharded)) as Big;
  expect(signature(fromShards)).toEqual(expected);
  fromShards.dispose();
  model.dispose();
  expectBackendHealthy();
  console.log(`2.4 GB checkpoint (cpu): one file ${(size / 2 ** 30).toFixed(2)} GiB saved in ${saveSeconds.toFixed(1)} s, loaded in ${loadSeconds.toFixed(1)} s`);
}, 300_000);

it('a Trainer checkpoint of 2.2 GB (180M parameters and both moments) saves and resumes', () => {
  const dir = path.join(root, 'trainer');
  const child = spawnSync(process.execPath, [path.resolve(__dirname, '../fixtures/big-trainer.js'), dir], { encoding: 'utf8', maxBuffer: 1 << 20 });
  expect(child.stderr).toBe('');
  expect(child.status).toBe(0);
  const result = JSON.parse(child.stdout) as {
    size: number;
    step: number;
    trained: number[][];
    resumed: number[][];
    expAvg: number[];
    resumedExpAvg: number[];
    saveSeconds: number;
    resumeSeconds: number;
    healthy: boolean;
  };
  expect(result.size).toBeGreaterThan(2 ** 31);
  expect(result.step).toBe(1);
  // One step moved every weight off its initial value k + 1, and the resumed run holds exactly those weights and moments.
  expect(result.trained.every(([a], k) => a !== k + 1)).toBe(true);
  expect(result.resumed).toEqual(result.trained);
  expect(result.resumedExpAvg).toEqual(result.expAvg);
  expect(result.expAvg[0]).not.toBe(0);
  expect(result.healthy).toBe(true);
  console.log(`Trainer checkpoint (cpu, plain node): ${(result.size / 2 ** 30).toFixed(2)} GiB; one step and its save ${result.saveSeconds.toFixed(1)} s, resumed (validated, loaded, saved again) in ${result.resumeSeconds.toFixed(1)} s`);
}, 300_000);
