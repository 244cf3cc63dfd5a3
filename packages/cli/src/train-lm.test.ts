import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, MieConfigError, setBackend, tf } from '@mie/core';
import { G2PModel } from '@mie/g2p-en';
import { PNG } from 'pngjs';
import { main } from './bin';
import { CharLanguageModel } from './char-language-model';
import { generate } from './generate';
import { trainLM, type LMMetrics, type TrainLMOptions } from './train-lm';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-lm-'));
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

beforeAll(async () => {
  await setBackend('wasm');
});

/** A model that trains in milliseconds a step. */
const TINY = { dModel: 32, numHeads: 2, numLayers: 1, dFf: 64, maxSeqLength: 32 };
const SMALL_RUN: Omit<TrainLMOptions, 'out'> = {
  minutes: 5, maxSteps: 30, seed: 2, trainDocuments: 20, validationDocuments: 2, testDocuments: 2, selectionWindows: 16, batchSize: 8,
  transformer: TINY, samples: 2, sampleLength: 20, progress: 'none', log: () => undefined,
};

describe('mie train lm on a small slice, end to end', () => {
  const out = path.join(root, 'lm');
  const lines: string[] = [];
  let metrics: LMMetrics;

  beforeAll(async () => {
    metrics = await trainLM({ ...SMALL_RUN, out, progress: 'lines', logEvery: 5, log: (line) => lines.push(line) });
  }, 120_000);

  it('trains, reports model and baseline bits per character, and writes the artefacts', () => {
    expect(metrics.training.steps).toBe(30);
    expect(metrics.training.stoppedBy).toBe('maxSteps');
    expect(metrics.config.scheduleSteps).toBe(30);
    for (const split of [metrics.validation, metrics.test]) {
      expect(split.documents).toBe(2);
      expect(split.tokens).toBeGreaterThan(10_000);
      // 30 tiny steps already beat guessing uniformly among the 84 predictable tokens.
      expect(split.model).toBeLessThan(Math.log2(84));
      expect(split.bigram).toBeLessThan(split.unigram);
    }
    expect(metrics.training.bestValidationBpc).toBeLessThan(Math.log2(84));
    expect(lines.some((l) => /^validation: \d+\.\d{3} bits per character \(unigram \d+\.\d{3}, bigram \d+\.\d{3}\)/.test(l))).toBe(true);
    expect(lines.some((l) => /^step \d+\/30 \| epoch 0 \| loss \d/.test(l))).toBe(true);
    const saved = JSON.parse(fs.readFileSync(path.join(out, 'metrics.json'), 'utf8')) as LMMetrics;
    expect(saved.test.model).toBe(metrics.test.model);
    expect(saved.samples).toHaveLength(2);
    for (const sample of saved.samples) {
      expect(sample.continuation.length).toBeLessThanOrEqual(20);
      expect(sample.prompt.endsWith(' ')).toBe(true);
    }
    expect(PNG.sync.read(fs.readFileSync(path.join(out, 'loss-curve.png'))).width).toBeGreaterThan(100);
    expect(fs.readdirSync(out).filter((name) => name.startsWith('.mie-tmp-'))).toEqual([]);
  });

  it('the saved model loads as a CharLanguageModel; mie generate streams its greedy text character by character', async () => {
    const loaded = await BaseModel.load(path.join(out, 'model'));
    expect(loaded).toBeInstanceOf(CharLanguageModel);
    const expected = await (loaded as CharLanguageModel).generateText('The ', { maxNewTokens: 12 });
    loaded.dispose();
    const before = tf.memory().numTensors;
    const pieces: string[] = [];
    // The run directory works as well as its model directory.
    const text = await generate(out, 'The ', { maxNewTokens: 12, write: (piece) => pieces.push(piece) });
    expect(text).toBe(expected);
    expect(pieces[0]).toBe('The ');
    expect(pieces[pieces.length - 1]).toBe('\n');
    expect(pieces.slice(1, -1).join('')).toBe(text);
    expect(pieces.slice(1, -1).every((piece) => [...piece].length === 1)).toBe(true);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('samples reproducibly with a seed, runs beam search, and continues past the model\'s context', async () => {
    const model = path.join(out, 'model');
    const quiet = { write: () => undefined };
    const sampled = await generate(model, 'A', { maxNewTokens: 20, temperature: 1, topK: 10, seed: 7, ...quiet });
    expect(await generate(model, 'A', { maxNewTokens: 20, temperature: 1, topK: 10, seed: 7, ...quiet })).toBe(sampled);
    const beams: string[] = [];
    const beam = await generate(model, 'A', { maxNewTokens: 8, numBeams: 2, write: (piece) => beams.push(piece) });
    expect(beam.length).toBeLessThanOrEqual(8);
    expect(beams.slice(1, -1).join('')).toBe(beam);
    // The context is 32 tokens: 80 characters take several window rounds (unless the model ends the document).
    const long = await generate(model, '', { maxNewTokens: 80, temperature: 0.8, seed: 1, ...quiet });
    expect(long.length).toBeLessThanOrEqual(80);
    expect(long.length).toBeGreaterThan(0);
  });

  it('refuses a prompt with characters outside the vocabulary, a missing model, a G2P model and sampling with beams', async () => {
    const before = tf.memory().numTensors;
    const quiet = { write: () => undefined };
    await expect(generate(out, 'naïve [x]', quiet)).rejects.toThrow(MieConfigError);
    await expect(generate(out, 'naïve [x]', quiet)).rejects.toThrow(/^mie generate: --prompt holds characters the model does not know: "ï", "\[", "\]"\. It knows: /);
    const missing = path.join(root, 'no-such-model');
    await expect(generate(missing, 'The', quiet)).rejects.toThrow(new RegExp(`^mie generate: --model ${escape(missing)} cannot be read: ENOENT`));
    const g2p = path.join(root, 'g2p-model');
    const other = new G2PModel({ transformer: { dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, maxSeqLength: 32 } });
    await other.save(g2p);
    other.dispose();
    await expect(generate(g2p, 'The', quiet)).rejects.toThrow(`mie generate: --model ${g2p} holds a G2PModel, not a character language model (train one with "mie train lm").`);
    await expect(generate(out, 'The', { numBeams: 2, temperature: 0.5, ...quiet })).rejects.toThrow(/--num-beams 2 is beam search, which does not sample/);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('mie generate on the command line: output on stdout, usage errors for bad options', async () => {
    const written: string[] = [];
    const write = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    try {
      expect(await main(['generate', '--model', out, '--prompt', 'The', '--max-new-tokens', '6', '--temperature', '0'])).toBe(0);
    } finally {
      write.mockRestore();
    }
    expect(written[0]).toBe('The');
    expect(written[written.length - 1]).toBe('\n');
    await expect(main(['generate', '--model', out])).rejects.toThrow(/generate needs --prompt TEXT/);
    await expect(main(['generate', '--prompt', 'x'])).rejects.toThrow(/generate needs --model DIR/);
    await expect(main(['generate', '--model', out, '--prompt', 'x', '--top-p', '0'])).rejects.toThrow(/--top-p must be a number in \(0, 1\]/);
    await expect(main(['generate', '--model', out, '--prompt', 'x', '--temperature', '-1'])).rejects.toThrow(/--temperature must be a number in \[0, 100\]/);
    await expect(main(['generate', '--model', out, '--prompt', 'x', '--max-new-tokens', '0'])).rejects.toThrow(/--max-new-tokens must be an integer in \[1, 100000\]/);
    await expect(main(['generate', '--model', out, '--prompt', 'x', '--beams', '2'])).rejects.toThrow(/mie generate takes no --beams/);
    await expect(main(['train', 'lm', '--prompt', 'x'])).rejects.toThrow(/mie train lm takes no --prompt/);
    const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
    try {
      expect(await main(['--help'])).toBe(0);
      expect(log.mock.calls[0][0]).toContain('  mie train lm [--minutes N]');
      expect(log.mock.calls[0][0]).toContain('  mie generate --model DIR --prompt TEXT');
      for (const [command, flags] of [
        [['train', 'lm'], ['--minutes N', '--out DIR', '--seed N', '--resume', '--force']],
        [['generate'], ['--model DIR', '--prompt TEXT', '--max-new-tokens N', '--temperature T', '--top-k K', '--top-p P', '--seed S', '--num-beams B']],
      ] as const) {
        log.mockClear();
        expect(await main([...command, '--help'])).toBe(0);
        const text = String(log.mock.calls[0][0]);
        expect(text.startsWith(`usage: mie ${command.join(' ')}`)).toBe(true);
        for (const flag of flags) expect(text).toContain(`  ${flag}`);
      }
    } finally {
      log.mockRestore();
    }
  });

  it('refuses to start a new run over the one in DIR, touching nothing', async () => {
    const files = ['train/lm-config.json', 'train/last/checkpoint.safetensors', 'metrics.json', 'model/model.safetensors'];
    const before = files.map((file) => fs.readFileSync(path.join(out, file)));
    await expect(trainLM({ ...SMALL_RUN, out })).rejects.toThrow(
      `mie train lm: ${out} already holds a run (loss-curve.png, metrics.json, model, train); pass --resume to continue it or --force to start over.`,
    );
    await expect(main(['train', 'lm', '--out', out, '--minutes', '1'])).rejects.toThrow(MieConfigError);
    expect(files.map((file) => fs.readFileSync(path.join(out, file)))).toEqual(before);
  });

  it('resumes from the trainer checkpoint with the architecture and schedule it started with', async () => {
    const configBefore = fs.readFileSync(path.join(out, 'train', 'lm-config.json'));
    const again = await trainLM({ ...SMALL_RUN, out, resume: true, maxSteps: 36, transformer: { ...TINY, dModel: 48 } });
    expect(again.training.steps).toBe(36);
    expect(again.config).toEqual(metrics.config);
    expect(again.parameters).toBe(metrics.parameters);
    expect(fs.readFileSync(path.join(out, 'train', 'lm-config.json'))).toEqual(configBefore);
  }, 120_000);

  it('refuses to resume without a run, or from an lm-config.json that is not one, naming the file', async () => {
    const empty = path.join(root, 'nothing-to-resume');
    await expect(trainLM({ ...SMALL_RUN, out: empty, resume: true })).rejects.toThrow(
      new RegExp(`cannot resume: ${escape(path.join(empty, 'train', 'lm-config.json'))} is missing or unreadable \\(ENOENT.*\\); ${escape(empty)} holds no run to continue\\.$`),
    );
    const copy = path.join(root, 'hostile-config');
    fs.cpSync(path.join(out, 'train'), path.join(copy, 'train'), { recursive: true });
    const file = path.join(copy, 'train', 'lm-config.json');
    const good = JSON.parse(fs.readFileSync(file, 'utf8'));
    const cases: Array<[string, RegExp]> = [
      ['[1]', /must hold a JSON object \{ model, batchSize, scheduleSteps, warmupSteps, peakLr, evalEvery \}\.$/],
      ['{"model": ', /is not valid JSON/],
      [JSON.stringify({ ...good, batchSize: 0 }), /does not describe a language-model run: "batchSize" must be an integer >= 1\. Received: 0\./],
      [JSON.stringify({ ...good, model: { ...good.model, characters: ['ab'] } }), /does not describe a language-model run: CharVocabulary: characters\[0\] must be one character/],
      [JSON.stringify({ ...good, model: { ...good.model, transformer: { ...good.model.transformer, dModel: 1e12 } } }), /has config\.model\.transformer\.dModel = 1000000000000, larger than any size/],
    ];
    for (const [text, message] of cases) {
      fs.writeFileSync(file, text);
      const before = tf.memory().numTensors;
      const error = (await trainLM({ ...SMALL_RUN, out: copy, resume: true }).catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(MieConfigError);
      expect(error.message).toMatch(new RegExp(`^mie train lm: cannot resume: ${escape(file)} `));
      expect(error.message).toMatch(message);
      expect(tf.memory().numTensors).toBe(before);
    }
  });

  it('--force starts over with a time budget: plans the schedule from the measured speed, keeps the user\'s files', async () => {
    const copy = path.join(root, 'forced');
    fs.cpSync(out, copy, { recursive: true });
    fs.writeFileSync(path.join(copy, 'notes.txt'), 'mine');
    const { maxSteps: _, ...budgeted } = SMALL_RUN;
    const fresh = await trainLM({ ...budgeted, minutes: 0.03, out: copy, force: true, samples: 0 });
    expect(fresh.training.stoppedBy).toBe('maxMinutes');
    expect(fresh.training.steps).toBeGreaterThan(0);
    expect(fresh.config.scheduleSteps).toBeGreaterThanOrEqual(50);
    expect(JSON.parse(fs.readFileSync(path.join(copy, 'metrics.json'), 'utf8')).training.steps).toBe(fresh.training.steps);
    expect(fs.readFileSync(path.join(copy, 'notes.txt'), 'utf8')).toBe('mine');
  }, 120_000);
});
