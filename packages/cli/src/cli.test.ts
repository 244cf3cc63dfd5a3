import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, MieConfigError, setBackend, tf } from '@mie/core';
import { PNG } from 'pngjs';
import { evalG2P, inspect, pronounce, trainIris } from './commands';
import { G2PModel } from './g2p-model';
import { main } from './bin';
import { architectureFor, effectiveMinutes, trainG2P } from './train-g2p';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-cli-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  await setBackend('wasm');
});

describe('mie train g2p on a small slice, end to end', () => {
  const out = path.join(root, 'g2p');
  const lines: string[] = [];
  let metrics: Awaited<ReturnType<typeof trainG2P>>;

  beforeAll(async () => {
    metrics = await trainG2P({
      minutes: 0.15,
      out,
      seed: 3,
      maxTrainWords: 400,
      devWords: 40,
      testWords: 40,
      numBeams: 2,
      progress: 'lines',
      // Lines often enough to appear within the budget on a loaded machine.
      logEvery: 2,
      log: (line) => lines.push(line),
      transformer: { dModel: 32, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 64 },
    });
  }, 240_000);

  it('trains, reports greedy and beam WER/PER, and writes the artefacts', () => {
    expect(metrics.training.steps).toBeGreaterThan(0);
    expect(metrics.test.greedy.words).toBe(40);
    expect(metrics.test.beam?.numBeams).toBe(2);
    for (const report of [metrics.test.greedy, metrics.test.beam!]) {
      expect(report.wer).toBeGreaterThanOrEqual(0);
      expect(report.wer).toBeLessThanOrEqual(1);
      expect(report.per).toBeGreaterThan(0); // a 10-second model is not perfect
    }
    expect(lines.some((l) => /^test greedy: WER \d+\.\d%, PER \d+\.\d%/.test(l))).toBe(true);
    expect(lines.some((l) => /^step \d+ \| epoch/.test(l))).toBe(true);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8'));
    expect(saved.test.greedy.wer).toBe(metrics.test.greedy.wer);
    expect(saved.samples).toHaveLength(12);
    for (const file of ['loss-curve.png', ...fs.readdirSync(out).filter((f) => f.startsWith('attention-'))]) {
      const png = PNG.sync.read(fs.readFileSync(path.join(out, file)));
      expect(png.width).toBeGreaterThan(100);
    }
    expect(fs.readdirSync(out).filter((f) => f.startsWith('attention-'))).toHaveLength(3);
  });

  it('the saved model loads, pronounces, evaluates and inspects from the command line', async () => {
    const model = path.join(out, 'model');
    const loaded = await BaseModel.load(model);
    expect(loaded).toBeInstanceOf(G2PModel);
    loaded.dispose();
    const logs: string[] = [];
    const [hello] = await pronounce(model, ['Hello'], { log: (l) => logs.push(l) });
    expect(logs[0]).toMatch(/^hello\t/);
    expect(hello.every((p) => /^[A-Z]{1,2}$/.test(p))).toBe(true);
    await expect(pronounce(model, ['naïve'])).rejects.toThrow(MieConfigError);
    await expect(pronounce(model, ['naïve'])).rejects.toThrow(/cannot spell "naïve": .*"ï"/);
    const inspectLines: string[] = [];
    await inspect(model, { log: (l) => inspectLines.push(l) });
    expect(inspectLines[0]).toMatch(/^G2PModel from /);
    expect(inspectLines.some((l) => l.includes('transformer.encoder') && l.includes('TransformerEncoder'))).toBe(true);
    const before = tf.memory().numTensors;
    const json: string[] = [];
    const result = (await evalG2P(model, { json: true, limit: 100, log: (l) => json.push(l) })) as { words: number; wer: number };
    expect(JSON.parse(json[0]).words).toBe(100);
    expect(result.wer).toBeGreaterThan(0);
    expect(tf.memory().numTensors).toBe(before);
  }, 240_000);

  it('resumes from the trainer checkpoint', async () => {
    const resumed: string[] = [];
    const again = await trainG2P({
      minutes: 0.05, out, seed: 3, resume: true, maxTrainWords: 400, devWords: 20, testWords: 20, numBeams: 0, progress: 'lines',
      // A different architecture asked for now: the run keeps the one it started with.
      log: (line) => resumed.push(line), transformer: { dModel: 48, numHeads: 2, numEncoderLayers: 2, numDecoderLayers: 1, dFf: 64 },
    });
    expect(again.training.steps).toBeGreaterThanOrEqual(metrics.training.steps);
    expect(again.config.transformer).toEqual(metrics.config.transformer);
    expect(again.parameters).toBe(metrics.parameters);
  }, 240_000);

  it('refuses to resume without the run it would continue, naming the file', async () => {
    const empty = path.join(root, 'nothing-to-resume');
    await expect(trainG2P({ minutes: 0.05, out: empty, seed: 3, resume: true, maxTrainWords: 50, progress: 'none', log: () => {} })).rejects.toThrow(
      new RegExp(`cannot resume: ${path.join(empty, 'train', 'g2p-config.json').replace(/[/.]/g, '\\$&')} is missing`),
    );
  });
});

describe('mie command line', () => {
  it('trains the Iris classifier to at least 90% held-out accuracy', async () => {
    const logs: string[] = [];
    const { accuracy } = await trainIris({ out: path.join(root, 'iris'), seed: 1, log: (l) => logs.push(l) });
    expect(accuracy).toBeGreaterThanOrEqual(0.9);
    expect(logs[0]).toMatch(/^iris: \d+\/30 held-out flowers right/);
    expect(fs.existsSync(path.join(root, 'iris', 'model.safetensors'))).toBe(true);
  }, 120_000);

  it('prints usage and exits 2 without a command, and rejects bad arguments', async () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await main([])).toBe(2);
    expect(log.mock.calls[0][0]).toMatch(/^usage:/);
    log.mockRestore();
    await expect(main(['frobnicate'])).rejects.toThrow(/unknown command "frobnicate"/);
    await expect(main(['pronounce', 'word'])).rejects.toThrow(/pronounce needs --model DIR/);
    await expect(main(['train', 'g2p', '--minutes', 'soon'])).rejects.toThrow(/--minutes must be a positive number/);
  });
});

describe('the G2P model sized for the budget and the device', () => {
  it('gives the slow matmul paths the model of a third of the time', () => {
    expect(effectiveMinutes(30, { backend: 'wasm', matmul: 'blas' })).toBe(30);
    expect(effectiveMinutes(30, { backend: 'tensorflow' })).toBe(30);
    expect(effectiveMinutes(30, { backend: 'wasm', matmul: 'simd' })).toBe(10);
    expect(effectiveMinutes(30, { backend: 'wasm', matmul: 'xnnpack' })).toBe(10);
    expect(effectiveMinutes(30, { backend: 'cpu' })).toBe(10);
  });

  it('grows from 2+2 to 3+3 layers after 15 reference minutes and adds dropout after an hour', () => {
    expect(architectureFor(10)).toMatchObject({ numEncoderLayers: 2, numDecoderLayers: 2, dropout: 0 });
    expect(architectureFor(30)).toMatchObject({ numEncoderLayers: 3, numDecoderLayers: 3, dropout: 0 });
    expect(architectureFor(120)).toMatchObject({ numEncoderLayers: 3, dropout: 0.1 });
    expect(new G2PModel({ transformer: architectureFor(10) }).countParameters()).toBe(941_227);
  });
});
