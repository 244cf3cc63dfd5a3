import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, MieConfigError, setBackend, tf } from '@mie/core';
import { ImageToSequenceTransformer } from '@mie/transformer';
import { PNG } from 'pngjs';
import { main } from './bin';
import { loadMnist, testStrips } from './digits-data';
import { readStrips, stripScores, trainDigits, type DigitsMetrics, type TrainDigitsOptions } from './train-digits';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-digits-'));
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  await setBackend('wasm');
});

/** A model that trains in milliseconds a step: 14 x 14 patches, d 16, one layer each side. */
const TINY = { patchSize: 14, dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32 };
const SMALL_RUN: Omit<TrainDigitsOptions, 'out'> = {
  minutes: 5, maxSteps: 12, seed: 2, trainDigits: 2000, validationStrips: 16, testStrips: 40, batchSize: 8, transformer: TINY, numBeams: 2,
  attentionStrips: 2, progress: 'none', log: () => undefined,
};

describe('mie train digits on a small slice, end to end', () => {
  const out = path.join(root, 'digits');
  const lines: string[] = [];
  let metrics: DigitsMetrics;

  beforeAll(async () => {
    metrics = await trainDigits({ ...SMALL_RUN, out, progress: 'lines', logEvery: 4, log: (line) => lines.push(line) });
  }, 120_000);

  it('trains, reports greedy and beam scores on the test strips, and writes the artefacts', () => {
    expect(metrics.training.steps).toBe(12);
    expect(metrics.training.stoppedBy).toBe('maxSteps');
    expect(metrics.training.stripsSeen).toBe(96);
    expect(metrics.config.scheduleSteps).toBe(12);
    for (const report of [metrics.test.greedy, metrics.test.beam!]) {
      expect(report.strips).toBe(40);
      expect(report.sequenceAccuracy).toBeGreaterThanOrEqual(0);
      expect(report.sequenceAccuracy).toBeLessThanOrEqual(1);
      expect(report.digitErrorRate).toBeGreaterThan(0);
      expect(report.seconds).toBeGreaterThan(0);
    }
    expect(metrics.test.beam!.numBeams).toBe(2);
    expect(lines.some((l) => /^test \(greedy\): sequence accuracy \d+\.\d{2}%, digit error rate \d+\.\d{2}% on 40 strips/.test(l))).toBe(true);
    expect(lines.some((l) => /^test \(beam 2\): /.test(l))).toBe(true);
    expect(lines.some((l) => /^step \d+\/12 \| epoch 0 \| loss \d/.test(l))).toBe(true);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')) as DigitsMetrics;
    expect(saved.test.greedy).toEqual(metrics.test.greedy);
    expect(saved.samples).toHaveLength(2);
    expect(saved.samples.every((s) => s.truth.length >= 3)).toBe(true);
    expect(PNG.sync.read(fs.readFileSync(path.join(out, 'loss-curve.png'))).width).toBeGreaterThan(100);
    // One picture per sampled strip.
    const pictures = fs.readdirSync(out).filter((name) => /^attention-\d+\.png$/.test(name));
    expect(pictures.sort()).toEqual(saved.samples.map((s) => `attention-${s.strip}.png`).sort());
    for (const picture of pictures) expect(PNG.sync.read(fs.readFileSync(path.join(out, picture))).width).toBeGreaterThan(420);
    expect(fs.readdirSync(out).filter((name) => name.startsWith('.mie-tmp-'))).toEqual([]);
  });

  it('saves an ImageToSequenceTransformer that reads the test strips as the report says', async () => {
    const loaded = await BaseModel.load(path.join(out, 'model'));
    expect(loaded).toBeInstanceOf(ImageToSequenceTransformer);
    const { test } = loadMnist();
    const strips = testStrips(test).slice(0, 40);
    const before = tf.memory().numTensors;
    const { predictions } = await readStrips(loaded as ImageToSequenceTransformer, test, strips);
    expect(stripScores(predictions, strips).sequenceAccuracy).toBe(metrics.test.greedy.sequenceAccuracy);
    expect(tf.memory().numTensors).toBe(before);
    loaded.dispose();
  });

  it('mie train digits --help lists its options', async () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await main(['train', 'digits', '--help'])).toBe(0);
      const text = String(log.mock.calls[0][0]);
      expect(text.startsWith('usage: mie train digits [--minutes N] [--out DIR] [--seed N] [--resume | --force]')).toBe(true);
      for (const flag of ['--minutes N', '--out DIR', '--seed N', '--resume', '--force']) expect(text).toContain(`  ${flag}`);
      expect(await main(['--help'])).toBe(0);
      expect(String(log.mock.calls[1][0])).toContain('mie train digits');
    } finally {
      log.mockRestore();
    }
  });

  it('refuses to start a new run over the one in DIR, touching nothing', async () => {
    const files = ['train/digits-config.json', 'train/last/checkpoint.safetensors', 'metrics.json', 'model/model.safetensors'];
    const before = files.map((file) => fs.readFileSync(path.join(out, file)));
    await expect(trainDigits({ ...SMALL_RUN, out })).rejects.toThrow(
      new RegExp(`^mie train digits: ${escape(out)} already holds a run \\(attention-\\d+\\.png, attention-\\d+\\.png, loss-curve\\.png, metrics\\.json, model, train\\); pass --resume to continue it or --force to start over\\.$`),
    );
    await expect(main(['train', 'digits', '--out', out, '--minutes', '1'])).rejects.toThrow(MieConfigError);
    expect(files.map((file) => fs.readFileSync(path.join(out, file)))).toEqual(before);
  });

  it('resumes from the trainer checkpoint with the architecture and schedule it started with', async () => {
    const configBefore = fs.readFileSync(path.join(out, 'train', 'digits-config.json'));
    const again = await trainDigits({ ...SMALL_RUN, out, resume: true, maxSteps: 16, transformer: { ...TINY, dModel: 32 } });
    expect(again.training.steps).toBe(16);
    expect(again.config).toEqual(metrics.config);
    expect(again.parameters).toBe(metrics.parameters);
    expect(fs.readFileSync(path.join(out, 'train', 'digits-config.json'))).toEqual(configBefore);
  }, 120_000);

  it('refuses to resume without a run, or from a digits-config.json that is not one, naming the file', async () => {
    const empty = path.join(root, 'nothing-to-resume');
    await expect(trainDigits({ ...SMALL_RUN, out: empty, resume: true })).rejects.toThrow(
      new RegExp(`cannot resume: ${escape(path.join(empty, 'train', 'digits-config.json'))} is missing or unreadable \\(ENOENT.*\\); ${escape(empty)} holds no run to continue\\.$`),
    );
    const copy = path.join(root, 'hostile-config');
    fs.cpSync(path.join(out, 'train'), path.join(copy, 'train'), { recursive: true });
    const file = path.join(copy, 'train', 'digits-config.json');
    const good = JSON.parse(fs.readFileSync(file, 'utf8'));
    const cases: Array<[string, RegExp]> = [
      ['[1]', /must hold a JSON object \{ model, batchSize, scheduleSteps, warmupSteps, peakLr, evalEvery \}\.$/],
      [JSON.stringify({ ...good, warmupSteps: 99 }), /does not describe a digit-strip reader: "warmupSteps" must be an integer in \[0, scheduleSteps\)/],
      [JSON.stringify({ ...good, model: { ...good.model, imageSize: [28, 28] } }), /does not describe a digit-strip reader: "model" must read 28 x 140 grey strips into 13 tokens/],
    ];
    for (const [text, message] of cases) {
      fs.writeFileSync(file, text);
      const before = tf.memory().numTensors;
      const error = (await trainDigits({ ...SMALL_RUN, out: copy, resume: true }).catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(MieConfigError);
      expect(error.message).toMatch(new RegExp(`^mie train digits: cannot resume: ${escape(file)} `));
      expect(error.message).toMatch(message);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('--force starts over with a time budget: plans the schedule from the measured speed, keeps the user\'s files', async () => {
    const copy = path.join(root, 'forced');
    fs.cpSync(out, copy, { recursive: true });
    fs.writeFileSync(path.join(copy, 'notes.txt'), 'mine');
    const { maxSteps: _, ...budgeted } = SMALL_RUN;
    const fresh = await trainDigits({ ...budgeted, minutes: 0.03, out: copy, force: true, numBeams: 0, attentionStrips: 0 });
    expect(fresh.training.stoppedBy).toBe('maxMinutes');
    expect(fresh.training.steps).toBeGreaterThan(0);
    expect(fresh.config.scheduleSteps).toBeGreaterThanOrEqual(50);
    expect(fresh.test.beam).toBeUndefined();
    expect(fs.readdirSync(copy).filter((name) => name.startsWith('attention-'))).toEqual([]);
    expect(fs.readFileSync(path.join(copy, 'notes.txt'), 'utf8')).toBe('mine');
  }, 120_000);
});
