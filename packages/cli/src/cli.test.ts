import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { execFileSync } from 'node:child_process';
import { BaseModel, MieConfigError, readSafetensorsFile, setBackend, tf, writeSafetensors } from '@mie/core';
import { MieTrainingError } from '@mie/training';
import { PNG } from 'pngjs';
import { evalG2P, inspect, pronounce, trainIris } from './commands';
import { G2PModel, bundledModelSource, loadG2P } from '@mie/g2p-en';
import { main } from './bin';
import { architectureFor, effectiveMinutes, trainG2P } from './train-g2p';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-cli-'));
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
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

  it('plans a cosine schedule for the budget, re-plans it after each evaluation, and keeps it in the run config', () => {
    const run = JSON.parse(fs.readFileSync(path.join(out, 'train', 'g2p-config.json'), 'utf8'));
    expect(run.model).toEqual(metrics.config);
    expect(run.batchSize).toBe(1400);
    expect(run.peakLr).toBe(2e-3);
    expect(run.ema).toEqual({ decay: 0.98, every: 4 });
    const planned = lines
      .map((l) => /^schedule: cosine over (\d+) steps of 1400 tokens, warm-up (\d+), peak lr 0\.002, evaluation every (\d+) steps of the weights' moving average \(decay 0\.98 every 4 steps\)$/.exec(l))
      .filter((m) => m !== null);
    expect(planned).toHaveLength(1);
    const [, first, warmup, every] = planned[0].map(Number);
    expect(first).toBeGreaterThanOrEqual(50);
    expect(run.warmupSteps).toBe(warmup);
    expect(warmup).toBe(Math.min(200, Math.floor(first / 10)));
    expect(run.evalEvery).toBe(every);
    expect(every).toBe(Math.max(1, Math.round(first / 10)));
    // Each evaluation re-plans; the run config holds the last plan.
    const replans = lines.map((l) => /^schedule: re-planned at step (\d+) \((\d+) ms a step\): cosine over (\d+) steps$/.exec(l)).filter((m) => m !== null);
    expect(replans.length).toBeGreaterThan(0);
    expect(replans.map((m) => Number(m[1]) % every)).toEqual(replans.map(() => 0));
    expect(run.scheduleSteps).toBe(Number(replans[replans.length - 1][3]));
    // The learning rate of each logged step ("step N | ... | lr X |") is the cosine over the plan
    // in force when it ran: a re-plan at step S is logged after step S and sets the steps after it.
    const lr = (step: number, total: number) => {
      const progress = Math.min(1, (step - warmup) / (total - warmup));
      return step <= warmup ? (run.peakLr * step) / warmup : run.peakLr / 10 + (run.peakLr - run.peakLr / 10) * 0.5 * (1 + Math.cos(Math.PI * progress));
    };
    let total = first;
    let checked = 0;
    for (const line of lines) {
      const replan = /^schedule: re-planned at step \d+ \(\d+ ms a step\): cosine over (\d+) steps$/.exec(line);
      if (replan) total = Number(replan[1]);
      const logged = /^step (\d+) \|.*\| lr ([\d.e+-]+) \|/.exec(line);
      if (!logged) continue;
      const expected = lr(Number(logged[1]), total);
      expect(Math.abs(Number(logged[2]) - expected)).toBeLessThanOrEqual(0.006 * expected); // 3 digits printed
      checked++;
    }
    expect(checked).toBeGreaterThan(0);
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

  it('refuses to start a new run over the one in DIR, touching nothing', async () => {
    const files = ['train/g2p-config.json', 'train/last/checkpoint.safetensors', 'metrics.json', 'model/model.safetensors'];
    const before = files.map((file) => fs.readFileSync(path.join(out, file)));
    const refusal = new RegExp(`^mie train g2p: ${escape(out)} already holds a run \\(attention-.*, loss-curve\\.png, metrics\\.json, model, train\\); pass --resume to continue it or --force to start over\\.$`);
    await expect(trainG2P({ minutes: 5, out, seed: 3, maxTrainWords: 50, progress: 'none', log: () => {} })).rejects.toThrow(refusal);
    await expect(main(['train', 'g2p', '--out', out, '--minutes', '30'])).rejects.toThrow(MieConfigError);
    expect(files.map((file) => fs.readFileSync(path.join(out, file)))).toEqual(before);
    // Every file was written atomically: no temporary file is left.
    expect(fs.readdirSync(out).filter((name) => name.startsWith('.mie-tmp-'))).toEqual([]);
  });

  it('refuses to resume from a g2p-config.json that is not one, naming it', async () => {
    const copy = path.join(root, 'hostile-config');
    fs.cpSync(path.join(out, 'train'), path.join(copy, 'train'), { recursive: true });
    const file = path.join(copy, 'train', 'g2p-config.json');
    const good = JSON.parse(fs.readFileSync(file, 'utf8'));
    const resume = () => trainG2P({ minutes: 0.05, out: copy, seed: 3, resume: true, maxTrainWords: 50, numBeams: 0, progress: 'none', log: () => {} });
    const cases: Array<[string, RegExp]> = [
      ['null', /must hold a JSON object \{ model, batchSize, scheduleSteps, warmupSteps, peakLr, evalEvery, ema\? \}\.$/],
      ['{"graphemes": [', /is not valid JSON/],
      ['{"constructor":{"name":{"toString":1}}}', /does not describe a G2P run: G2PModel: unknown option "constructor"/],
      [JSON.stringify({ ...good, model: { ...good.model, transformer: { ...good.model.transformer, dModel: 1e12 } } }), /has config\.model\.transformer\.dModel = 1000000000000, larger than any size the \d+-byte checkpoint can describe/],
      [JSON.stringify({ ...good, model: { ...good.model, graphemes: [{ toString: 1 }] } }), /does not describe a G2P run: Vocabulary: option "tokens" must be an array of non-empty strings\. Received: \[an object\]/],
      [JSON.stringify({ ...good, warmupSteps: good.scheduleSteps }), /does not describe a G2P run: "warmupSteps" must be an integer in \[0, scheduleSteps\)/],
      [JSON.stringify({ ...good, peakLr: '1e-3' }), /does not describe a G2P run: "peakLr" must be a number in \(0, 1\)/],
      [JSON.stringify({ ...good, ema: { ...good.ema, decay: 1 } }), /does not describe a G2P run: "ema\.decay" must be a number in \[0, 1\)/],
      [JSON.stringify({ ...good, ema: { ...good.ema, every: 0.5 } }), /does not describe a G2P run: "ema\.every" must be an integer >= 1/],
      [JSON.stringify({ ...good, ema: { ...good.ema, span: 3 } }), /does not describe a G2P run: g2p-config\.json "ema": unknown option "span"/],
    ];
    for (const [text, message] of cases) {
      fs.writeFileSync(file, text);
      const before = tf.memory().numTensors;
      const error = (await resume().catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(MieConfigError);
      expect(error.message).toMatch(new RegExp(`^mie train g2p: cannot resume: ${escape(file)} `));
      expect(error.message).toMatch(message);
      expect(tf.memory().numTensors).toBe(before);
    }
    fs.rmSync(file);
    execFileSync('mkfifo', [file]);
    await expect(resume()).rejects.toThrow(`mie train g2p: cannot resume: ${file} must be a regular file. Received: a FIFO.`);
    // A sound config of another architecture than the checkpoint: the trainer refuses it, naming the checkpoint.
    fs.rmSync(file);
    fs.writeFileSync(file, JSON.stringify({ ...good, model: { ...good.model, transformer: { ...good.model.transformer, dFf: good.model.transformer.dFf * 2 } } }));
    const before = tf.memory().numTensors;
    const error = (await resume().catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(MieTrainingError);
    expect(error.message).toMatch(new RegExp(`^Trainer\\.fit: cannot resume from ${escape(path.join(copy, 'train', 'last', 'checkpoint.safetensors'))}: its weights are not this model's`));
    expect(tf.memory().numTensors).toBe(before);
    // A config without the weight average the checkpoint keeps: refused, not resumed without it.
    const { ema: _ema, ...withoutEma } = good;
    fs.writeFileSync(file, JSON.stringify(withoutEma));
    await expect(resume()).rejects.toThrow(/trained with a moving average of the weights \(option "ema"\), and this run keeps none/);
    expect(tf.memory().numTensors).toBe(before);
  }, 120_000);

  it('--force starts over: removes the old run\'s files, keeps the user\'s, and trains', async () => {
    const copy = path.join(root, 'forced');
    fs.cpSync(out, copy, { recursive: true });
    fs.writeFileSync(path.join(copy, 'notes.txt'), 'mine');
    fs.writeFileSync(path.join(copy, 'attention-old_word.png'), 'stale');
    const fresh = await trainG2P({
      minutes: 0.02, out: copy, seed: 4, force: true, maxTrainWords: 50, devWords: 5, testWords: 5, numBeams: 0, progress: 'none', log: () => {},
      transformer: { dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32 },
    });
    expect(JSON.parse(fs.readFileSync(path.join(copy, 'train', 'g2p-config.json'), 'utf8')).model.transformer.dModel).toBe(16);
    expect(JSON.parse(fs.readFileSync(path.join(copy, 'metrics.json'), 'utf8')).training.steps).toBe(fresh.training.steps);
    expect(fs.readFileSync(path.join(copy, 'notes.txt'), 'utf8')).toBe('mine');
    expect(fs.existsSync(path.join(copy, 'attention-old_word.png'))).toBe(false);
    expect(fs.readdirSync(copy).filter((name) => name.startsWith('attention-'))).toHaveLength(3);
  }, 120_000);

  it('resumes from the trainer checkpoint', async () => {
    const configBefore = fs.readFileSync(path.join(out, 'train', 'g2p-config.json'));
    const resumed: string[] = [];
    const again = await trainG2P({
      minutes: 0.05, out, seed: 3, resume: true, maxTrainWords: 400, devWords: 20, testWords: 20, numBeams: 0, progress: 'lines',
      // A different architecture asked for now: the run keeps the one it started with.
      log: (line) => resumed.push(line), transformer: { dModel: 48, numHeads: 2, numEncoderLayers: 2, numDecoderLayers: 1, dFf: 64 },
    });
    expect(again.training.steps).toBeGreaterThanOrEqual(metrics.training.steps);
    expect(again.config.transformer).toEqual(metrics.config.transformer);
    expect(again.parameters).toBe(metrics.parameters);
    // Another --minutes does not rewrite the architecture: the run stays resumable.
    expect(fs.readFileSync(path.join(out, 'train', 'g2p-config.json'))).toEqual(configBefore);
  }, 240_000);

  it('resumes with the batch size in its run config', async () => {
    const copy = path.join(root, 'small-batches');
    fs.cpSync(path.join(out, 'train'), path.join(copy, 'train'), { recursive: true });
    // The run that wrote this checkpoint (an earlier test may have resumed it) wrote these metrics.
    const before = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')).training;
    const file = path.join(copy, 'train', 'g2p-config.json');
    fs.writeFileSync(file, JSON.stringify({ ...JSON.parse(fs.readFileSync(file, 'utf8')), batchSize: 60 }, null, 2));
    const logs: string[] = [];
    const again = await trainG2P({ minutes: 0.05, out: copy, seed: 3, resume: true, maxTrainWords: 400, devWords: 10, testWords: 10, numBeams: 0, progress: 'lines', logEvery: 1, log: (line) => logs.push(line) });
    expect(logs.some((l) => /^schedule: cosine over \d+ steps of 60 tokens/.test(l))).toBe(true);
    // The 400 words' pairs hold about 4,000 tokens: 3-4 batches an epoch of 1400, over 60 of 60.
    const steps = again.training.steps - before.steps;
    const epochs = again.training.epochs - before.epochs;
    expect(steps).toBeGreaterThanOrEqual(8);
    expect(epochs).toBeLessThanOrEqual(steps / 20);
  }, 240_000);

  it('resumes a run started before the planned schedule with its own schedule', async () => {
    const copy = path.join(root, 'legacy-run');
    fs.cpSync(path.join(out, 'train'), path.join(copy, 'train'), { recursive: true });
    const file = path.join(copy, 'train', 'g2p-config.json');
    // What earlier versions wrote: the model's config alone, and a checkpoint without a weight average.
    fs.writeFileSync(file, JSON.stringify(JSON.parse(fs.readFileSync(file, 'utf8')).model, null, 2));
    const checkpoint = path.join(copy, 'train', 'last', 'checkpoint.safetensors');
    const { tensors, metadata } = await readSafetensorsFile(checkpoint);
    const { ema: _ema, ...state } = JSON.parse(metadata['mie.trainer']);
    const kept = Object.fromEntries(Object.entries(tensors).filter(([name]) => !name.startsWith('ema.')));
    fs.writeFileSync(checkpoint, writeSafetensors(kept, { ...metadata, 'mie.trainer': JSON.stringify(state) }));
    tf.dispose(Object.values(tensors));
    const logs: string[] = [];
    const again = await trainG2P({ minutes: 0.03, out: copy, seed: 3, resume: true, maxTrainWords: 400, devWords: 10, testWords: 10, numBeams: 0, progress: 'lines', logEvery: 1, log: (line) => logs.push(line) });
    expect(again.training.steps).toBeGreaterThanOrEqual(metrics.training.steps);
    expect(again.config).toEqual(metrics.config);
    expect(logs.some((l) => /^schedule: inverse square root, peak lr 0\.002 after 200 steps \(the run's own\)/.test(l))).toBe(true);
  }, 240_000);

  it('refuses to resume without the run it would continue, naming the file', async () => {
    const empty = path.join(root, 'nothing-to-resume');
    await expect(trainG2P({ minutes: 0.05, out: empty, seed: 3, resume: true, maxTrainWords: 50, progress: 'none', log: () => {} })).rejects.toThrow(
      new RegExp(`cannot resume: ${escape(path.join(empty, 'train', 'g2p-config.json'))} is missing or unreadable \\(ENOENT.*\\); ${escape(empty)} holds no run to continue\\.$`),
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

    // The same directory again: refused; --resume continues the finished run (same model); --force starts over.
    const iris = path.join(root, 'iris');
    fs.writeFileSync(path.join(iris, 'notes.txt'), 'mine');
    await expect(trainIris({ out: iris, seed: 1, log: () => {} })).rejects.toThrow(
      `mie train iris: ${iris} already holds a run (config.json, model.safetensors, train); pass --resume to continue it or --force to start over.`,
    );
    const resumed = await trainIris({ out: iris, seed: 1, resume: true, log: () => {} });
    expect(resumed.accuracy).toBe(accuracy);
    await expect(trainIris({ out: iris, seed: 2, resume: true, log: () => {} })).rejects.toThrow(MieTrainingError);
    const forced = await trainIris({ out: iris, seed: 1, force: true, log: () => {} });
    expect(forced.accuracy).toBe(accuracy);
    expect(fs.readFileSync(path.join(iris, 'notes.txt'), 'utf8')).toBe('mine');
  }, 120_000);

  it('prints usage and exits 2 without a command, and rejects bad arguments', async () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    expect(await main([])).toBe(2);
    expect(log.mock.calls[0][0]).toMatch(/^usage:/);
    log.mockRestore();
    await expect(main(['frobnicate'])).rejects.toThrow(/unknown command "frobnicate"/);
    await expect(main(['inspect'])).rejects.toThrow(/inspect needs --model DIR/);
    await expect(main(['train', 'g2p', '--minutes', 'soon'])).rejects.toThrow(/--minutes must be a number in \(0, 100000\]/);
  });

  it('pronounces with the pretrained @mie/g2p-en model when no --model is given', async () => {
    const lines: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      expect(await main(['pronounce', 'hello', 'World'])).toBe(0);
    } finally {
      log.mockRestore();
    }
    const model = await loadG2P();
    try {
      const expected = await model.pronounce(['hello', 'world']);
      expect(lines).toEqual([`hello\t${expected[0].join(' ')}`, `world\t${expected[1].join(' ')}`]);
    } finally {
      model.dispose();
    }
  });

  it('the pretrained model: test WER at most 30% greedy, re-measured on the whole test split, as its metrics.json says', async () => {
    const lines: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      expect(await main(['eval', 'g2p', '--json'])).toBe(0); // no --model: the bundled one
    } finally {
      log.mockRestore();
    }
    const result = JSON.parse(lines[0]) as { words: number; wer: number; per: number };
    expect(result.words).toBe(6174);
    expect(result.wer).toBeLessThanOrEqual(0.3);
    const shipped = JSON.parse(fs.readFileSync(path.join(bundledModelSource(), 'metrics.json'), 'utf8'));
    expect(result.wer).toBeCloseTo(shipped.test.greedy.wer, 6);
    expect(result.per).toBeCloseTo(shipped.test.greedy.per, 6);
  }, 300_000);

  it('prints its version, the full usage with --help, and each command\'s options with COMMAND --help', async () => {
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      const version = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')).version;
      expect(await main(['--version'])).toBe(0);
      expect(await main(['-v'])).toBe(0);
      expect(log.mock.calls[0][0]).toBe(`mie ${version} (@mie/core ${version}, @tensorflow/tfjs-core 4.22.0, Node ${process.versions.node})`);
      expect(log.mock.calls[1][0]).toBe(log.mock.calls[0][0]);
      log.mockClear();
      expect(await main(['--help'])).toBe(0);
      for (const command of ['mie train g2p', 'mie train iris', 'mie eval g2p', 'mie pronounce', 'mie inspect', 'mie --version', 'mie COMMAND --help']) {
        expect(log.mock.calls[0][0]).toContain(`  ${command}`);
      }
      const options: Array<[string[], string[]]> = [
        [['train', 'g2p'], ['--minutes N', '--out DIR', '--seed N', '--resume', '--force']],
        [['train', 'iris'], ['--out DIR', '--seed N', '--resume', '--force']],
        [['eval', 'g2p'], ['--model DIR', '--json', '--beams N']],
        [['pronounce'], ['--model DIR', '--beams N']],
        [['inspect'], ['--model DIR']],
      ];
      for (const [command, flags] of options) {
        log.mockClear();
        expect(await main([...command, '--help'])).toBe(0); // no --model needed for help
        const text = String(log.mock.calls[0][0]);
        expect(text.startsWith(`usage: mie ${command.join(' ')}`)).toBe(true);
        for (const flag of flags) expect(text).toContain(`  ${flag}`);
      }
    } finally {
      log.mockRestore();
    }
    await expect(main(['train', 'g2p', '--version'])).rejects.toThrow(/mie train g2p takes no --version/);
    await expect(main(['frobnicate', '--help'])).rejects.toThrow(/unknown command "frobnicate"/);
  });
});

describe('the G2P model sized for the budget and the device', () => {
  it('gives each matmul path the model of the time its measured speed buys', () => {
    expect(effectiveMinutes(30, { backend: 'wasm', matmul: 'blas' })).toBe(30);
    expect(effectiveMinutes(30, { backend: 'tensorflow' })).toBe(30);
    expect(effectiveMinutes(26, { backend: 'wasm', matmul: 'simd', threads: 2 })).toBeCloseTo(20, 10);
    expect(effectiveMinutes(35, { backend: 'wasm', matmul: 'simd', threads: 1 })).toBeCloseTo(20, 10);
    expect(effectiveMinutes(35, { backend: 'wasm', matmul: 'simd' })).toBeCloseTo(20, 10);
    expect(effectiveMinutes(30, { backend: 'wasm', matmul: 'xnnpack' })).toBe(10);
    expect(effectiveMinutes(30, { backend: 'cpu' })).toBe(10);
  });

  it('grows from 2+2 layers and d_ff 256 to 3+3 and d_ff 512 after 15 reference minutes and adds dropout after an hour', () => {
    expect(architectureFor(10)).toMatchObject({ numEncoderLayers: 2, numDecoderLayers: 2, dFf: 256, dropout: 0 });
    expect(architectureFor(15)).toMatchObject({ numEncoderLayers: 2, dFf: 256 });
    expect(architectureFor(30)).toMatchObject({ numEncoderLayers: 3, numDecoderLayers: 3, dFf: 512, dropout: 0 });
    expect(architectureFor(120)).toMatchObject({ numEncoderLayers: 3, dFf: 512, dropout: 0.1 });
    expect(new G2PModel({ transformer: architectureFor(10) }).countParameters()).toBe(678_059);
  });
});
