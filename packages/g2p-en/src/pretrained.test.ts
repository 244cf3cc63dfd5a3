import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieConfigError, setBackend, tf } from '@mie/core';
import { TransformerEncoder } from '@mie/transformer';
import { G2PModel, GRAPHEMES, PHONEMES, loadG2P, pronounce } from './index';
import { bundledModelSource as browserSource } from './model-location-browser';

beforeAll(async () => {
  await setBackend('wasm');
});

describe('the bundled model', () => {
  it('loads from the package as a G2PModel in eval mode, over the 39 phonemes and 27 letters', async () => {
    const before = tf.memory().numTensors;
    const model = await loadG2P();
    expect(model).toBeInstanceOf(G2PModel);
    expect(model.training).toBe(false);
    expect(model.config.phonemes).toEqual([...PHONEMES]);
    expect(model.config.graphemes).toEqual(GRAPHEMES);
    expect(model.countParameters()).toBeGreaterThan(500_000);
    model.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('is shipped with its measured metrics', () => {
    const metrics = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'model', 'metrics.json'), 'utf8'));
    expect(metrics.test.greedy.wer).toBeGreaterThan(0);
    expect(metrics.test.greedy.wer).toBeLessThanOrEqual(0.3);
    expect(metrics.test.words).toBe(6174);
  });
});

describe('pronounce', () => {
  let model: G2PModel;
  beforeAll(async () => {
    model = await loadG2P();
  });
  afterAll(() => model.dispose());

  it('gives what the model decodes, greedy and with beams, loading and freeing a model per call', async () => {
    const words = ['hello', 'world', 'tensor', "o'brien"];
    const before = tf.memory().numTensors;
    const greedy = await pronounce(words);
    expect(tf.memory().numTensors).toBe(before);
    expect(greedy).toEqual(await model.pronounce(words));
    expect(greedy).toHaveLength(4);
    for (const phonemes of greedy) {
      expect(phonemes.length).toBeGreaterThan(0);
      for (const p of phonemes) expect(PHONEMES).toContain(p);
    }
    expect(await pronounce(words, { beams: 5 })).toEqual(await model.pronounce(words, { numBeams: 5 }));
    expect(tf.memory().numTensors).toBe(before);
  });

  it('takes one word, uppercase, a model to reuse, or a folder to load from', async () => {
    const [hello] = await model.pronounce(['hello']);
    expect(await pronounce('HELLO')).toEqual([hello]);
    expect(await pronounce(['Hello'], { model })).toEqual([hello]);
    expect(model.isDisposed).toBe(false);
    expect(await pronounce(['hello'], { url: path.join(__dirname, '..', 'model') })).toEqual([hello]);
  });

  it('refuses bad words, beams and options with a MieConfigError naming them, before any work', async () => {
    const before = tf.memory().numTensors;
    await expect(pronounce(['hello', 'h3llo'])).rejects.toThrow(/G2PModel: cannot spell "h3llo"/);
    await expect(pronounce([''])).rejects.toThrow(/pronounce: words must be a non-empty string or an array of them/);
    await expect(pronounce(42 as unknown as string)).rejects.toThrow(MieConfigError);
    await expect(pronounce('hello', { beams: 0 })).rejects.toThrow(/pronounce: beams must be an integer in \[1, 64\]/);
    await expect(pronounce('hello', { beams: 1.5 })).rejects.toThrow(MieConfigError);
    await expect(pronounce('hello', { beam: 5 } as never)).rejects.toThrow(/beam/);
    await expect(pronounce('hello', { model: {} as G2PModel })).rejects.toThrow(/option "model" must be a G2PModel/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a folder that holds another model class', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'g2p-en-'));
    const other = new TransformerEncoder({ vocabSize: 8, dModel: 8, numHeads: 2, numLayers: 1, dFf: 16, maxSeqLength: 8 });
    try {
      await other.save(dir);
      const before = tf.memory().numTensors;
      await expect(loadG2P({ url: dir })).rejects.toThrow(/loadG2P: .* holds a TransformerEncoder, not a G2PModel/);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      other.dispose();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in a browser bundle, asks where the model files are served', () => {
    expect(() => browserSource()).toThrow(/in a browser, serve the files of node_modules\/@mie\/g2p-en\/model\/ .* loadG2P\(\{ url/);
  });
});

describe('G2PModel.attentionMap', () => {
  it('gives the last layer\'s cross-attention, mean over heads, as rows that sum to 1, without leaking', async () => {
    const model = await loadG2P();
    try {
      const before = tf.memory().numTensors;
      const [phonemes] = await model.pronounce(['cat']);
      const map = await model.attentionMap('cat');
      expect(map.sourceTokens).toEqual(['c', 'a', 't', '</s>']);
      expect(map.targetTokens).toEqual([...phonemes, '</s>']);
      expect(map.weights).toHaveLength(phonemes.length + 1);
      for (const row of map.weights) {
        expect(row).toHaveLength(4);
        expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      }
      // The same numbers as the transformer's own output.
      const src = model.sourceBatch(['cat']);
      const tgtIn = tf.tensor2d([[1, ...model.encodePronunciation(phonemes)]], [1, phonemes.length + 1], 'int32');
      const output = model.transformer.forward(src, tgtIn, { returnAttention: true });
      const last = output.crossAttention[output.crossAttention.length - 1];
      const head0 = (await last.array()) as number[][][][];
      const heads = head0[0].length;
      const expected = head0[0][0].map((row, i) => row.map((_, j) => head0[0].reduce((sum, h) => sum + h[i][j], 0) / heads));
      for (let i = 0; i < expected.length; i++) for (let j = 0; j < 4; j++) expect(map.weights[i][j]).toBeCloseTo(expected[i][j], 6);
      tf.dispose([src, tgtIn, output.logits, ...output.crossAttention, ...output.encoderSelfAttention, ...output.decoderSelfAttention]);
      expect(tf.memory().numTensors).toBe(before);
    } finally {
      model.dispose();
    }
  });
});
