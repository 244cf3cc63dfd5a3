import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONFIG_FILE, WEIGHTS_FILE, setBackend, tf } from '@mie/core';
import { run } from './bin';
import { G2PModel } from '@mie/g2p-en';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-bin-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const at = (...parts: string[]) => path.join(root, ...parts);

const TINY = { dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, dropout: 0, maxSeqLength: 64 };

beforeAll(async () => {
  await setBackend('cpu');
  const model = new G2PModel({ transformer: TINY });
  await model.save(at('model'));
  model.dispose();
  // --model pointing at a FIFO, and at a directory whose config.json is a FIFO.
  execFileSync('mkfifo', [at('fifo')]);
  fs.mkdirSync(at('fifo-config'));
  execFileSync('mkfifo', [at('fifo-config', CONFIG_FILE)]);
  fs.copyFileSync(at('model', WEIGHTS_FILE), at('fifo-config', WEIGHTS_FILE));
  // A directory with the real weights and hostile config.json files.
  const config = JSON.parse(fs.readFileSync(at('model', CONFIG_FILE), 'utf8'));
  const hostile: Record<string, unknown> = {
    'hostile-constructor': { ...config, config: { constructor: { name: { toString: 1 } } } },
    'hostile-transformer': { ...config, config: { ...config.config, transformer: { constructor: { name: { toString: 1 } } } } },
    'hostile-graphemes': { ...config, config: { ...config.config, graphemes: [{ toString: 1 }] } },
    'hostile-size': { ...config, config: { ...config.config, transformer: { ...TINY, dModel: 1e9 } } },
    'hostile-class': { ...config, className: { toString: 1 } },
  };
  for (const [name, value] of Object.entries(hostile)) {
    fs.mkdirSync(at(name));
    fs.writeFileSync(at(name, CONFIG_FILE), JSON.stringify(value));
    fs.copyFileSync(at('model', WEIGHTS_FILE), at(name, WEIGHTS_FILE));
  }
  fs.mkdirSync(at('not-json'));
  fs.writeFileSync(at('not-json', CONFIG_FILE), '{"format": "mie", ');
  fs.copyFileSync(at('model', WEIGHTS_FILE), at('not-json', WEIGHTS_FILE));
});

/** Runs `mie ARGS` in this process; returns the exit code and what went to stderr (and stdout). */
async function mie(...args: string[]): Promise<{ code: number; errors: string[]; lines: string[] }> {
  const errors: string[] = [];
  const lines: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
  try {
    const code = await run(args, { error: (line) => errors.push(line) });
    return { code, errors, lines };
  } finally {
    log.mockRestore();
  }
}

/** Expects exit `code` with exactly one stderr line, matching `pattern`, and no stack. */
async function expectOneLine(args: string[], code: number, pattern: RegExp): Promise<string> {
  const before = tf.memory().numTensors;
  const result = await mie(...args);
  expect(result.errors).toHaveLength(1);
  expect(result.errors[0]).not.toMatch(/\n|\(\S+:\d+:\d+\)/);
  expect(result.errors[0]).toMatch(/^mie: /);
  expect(result.errors[0]).toMatch(pattern);
  expect(result.code).toBe(code);
  expect(tf.memory().numTensors).toBe(before);
  return result.errors[0];
}

describe('mie: every bad input is one line and a non-zero exit code', () => {
  it('works on a good model (the fixture is sound)', async () => {
    const result = await mie('pronounce', '--model', at('model'), 'Hello', ' word ');
    expect(result.code).toBe(0);
    expect(result.lines.map((line) => line.split('\t')[0])).toEqual(['hello', 'word']);
    expect((await mie('inspect', '--model', at('model'))).code).toBe(0);
  });

  it.each([
    [['pronounce', '--model', 'M', ''], /^mie: pronounce: WORD 1 of 1 must hold at least one letter\. Received: ""\.$/],
    [['pronounce', '--model', 'M', 'ok', ' \t '], /^mie: pronounce: WORD 2 of 2 must hold at least one letter\. Received: " \\t "\.$/],
    [['pronounce', '--model', 'M'], /^mie: pronounce: give at least one WORD\.$/],
    [['pronounce', '--model', 'M', 'naïve'], /cannot spell "naïve"/],
    [['eval', 'g2p', '--model', '/nonexistent'], /^mie: eval g2p: --model \/nonexistent cannot be read: ENOENT/],
    [['inspect', '--model', 'FIFO'], /^mie: inspect: --model .*fifo must be a model directory \(with config\.json and model\.safetensors\); it is a FIFO \(named pipe\)\.$/],
    [['inspect', '--model', 'FIFO-CONFIG'], /^mie: inspect: --model .*fifo-config: .*config\.json must be a regular file; it is a FIFO \(named pipe\)\.$/],
    [['pronounce', '--model', 'ROOT', 'word'], /^mie: pronounce: --model .* holds no model: .*config\.json is missing or unreadable \(ENOENT/],
    [['train', 'g2p', '--out', '/dev/null/x', '--minutes', '0.01'], /^mie: train g2p: cannot use --out \/dev\/null\/x: ENOTDIR/],
    [['train', 'iris', '--out', '/dev/null/x'], /^mie: train iris: cannot use --out \/dev\/null\/x: ENOTDIR/],
    [['train', 'iris', '--resume', '--out', 'ROOT/no-run'], /^mie: train iris: cannot resume: .*no-run\/train\/last\/checkpoint\.safetensors is missing or unreadable/],
  ])('mie %j exits 1 with one line', async (args, pattern) => {
    const resolved = args.map((arg) => arg.replace('FIFO-CONFIG', at('fifo-config')).replace('FIFO', at('fifo')).replace('ROOT', root).replace(/^M$/, at('model')));
    await expectOneLine(resolved, 1, pattern);
  });

  it.each([
    [['pronounce', '--beams', '0', '--model', 'M', 'word'], /^mie: --beams must be an integer in \[1, 64\], got "0" \(mie --help shows the usage\)$/],
    [['pronounce', '--beams', '1.5', '--model', 'M', 'word'], /--beams must be an integer in \[1, 64\], got "1\.5"/],
    [['pronounce', '--beams', '1e6', '--model', 'M', 'word'], /--beams must be an integer in \[1, 64\], got "1e6"/],
    [['eval', 'g2p', '--beams', '-3', '--model', 'M'], /--beams must be an integer in \[1, 64\], got "-3"/],
    [['train', 'g2p', '--minutes', '-1'], /^mie: --minutes must be a number in \(0, 100000\], got "-1"/],
    [['train', 'g2p', '--minutes', 'Infinity'], /--minutes must be a number/],
    [['train', 'g2p', '--minutes', '1e9'], /--minutes must be a number in \(0, 100000\], got "1e9"/],
    [['train', 'g2p', '--seed', 'x'], /^mie: --seed must be an integer >= 0, got "x"/],
    [['train', 'g2p', '--seed', ''], /--seed must be an integer >= 0, got ""/],
    [['train', 'g2p', '--seed', '0x10'], /--seed must be an integer >= 0, got "0x10"/],
    [['train', 'g2p', '--resume', '--force'], /--resume and --force cannot be combined/],
    [['train', 'g2p', '--model', 'M'], /^mie: train g2p takes no --model/],
    [['train', 'g2p', 'extra'], /^mie: train g2p takes no argument "extra"/],
    [['inspect', '--model', 'M', 'extra'], /^mie: inspect takes no argument "extra"/],
    [['--frobnicate'], /^mie: Unknown option '--frobnicate'/],
    [['pronounce', '--model'], /^mie: Option '--model <value>' argument missing/],
    [['train'], /^mie: unknown command "train"/],
    [['dance', 'now'], /^mie: unknown command "dance now"/],
  ])('mie %j exits 2 with one line', async (args, pattern) => {
    await expectOneLine(args.map((arg) => (arg === 'M' ? at('model') : arg)), 2, pattern);
  });

  it.each(['hostile-constructor', 'hostile-transformer', 'hostile-graphemes', 'hostile-size', 'hostile-class', 'not-json'])(
    'mie inspect on a model whose config.json is %s prints one line',
    async (name) => {
      const line = await expectOneLine(['inspect', '--model', at(name)], 1, /^mie: /);
      expect(line).toContain(at(name));
    },
  );

  it('passes a refusal of the model or the generator through as one line (a word longer than the model takes)', async () => {
    await expectOneLine(['pronounce', '--model', at('model'), 'a'.repeat(200)], 1, /^mie: PositionalEncoding: .*sequence length 201, but maxSeqLength is 64/);
  });
});
