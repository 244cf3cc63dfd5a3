import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieConfigError, setBackend, tf } from '@mie/core';
import { bundledModelSource, loadG2P } from '@mie/g2p-en';
import { PNG } from 'pngjs';
import { main, run } from './bin';
import { EXPLAIN_PICTURES, explainG2P } from './explain-g2p';

// MIE_EXPLAIN_DIR keeps the pictures for a person to look at; otherwise a temporary folder is removed.
const root = process.env.MIE_EXPLAIN_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'mie-explain-'));
afterAll(() => {
  if (!process.env.MIE_EXPLAIN_DIR) fs.rmSync(root, { recursive: true, force: true });
});
beforeAll(async () => {
  await setBackend('cpu');
});

/** Runs `mie ARGS` in this process: exit code, stdout lines, stderr lines. */
async function mie(...args: string[]): Promise<{ code: number; lines: string[]; errors: string[] }> {
  const lines: string[] = [];
  const errors: string[] = [];
  const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
  try {
    const code = await run(args, { error: (line) => errors.push(line) });
    return { code, lines, errors };
  } finally {
    log.mockRestore();
  }
}

const decode = (file: string) => PNG.sync.read(fs.readFileSync(file));

describe('mie explain g2p', () => {
  it('writes the cross-attention, self-attention and logit-lens pictures of the bundled model, as PNG and SVG', async () => {
    const out = path.join(root, 'phoenix');
    const before = tf.memory().numTensors;
    const { code, lines, errors } = await mie('explain', 'g2p', '--out', out, 'Phoenix');
    expect([code, errors]).toEqual([0, []]);
    expect(tf.memory().numTensors).toBe(before);

    const model = await loadG2P();
    const [expected] = await model.pronounce(['phoenix']);
    const { transformer } = model.config;
    model.dispose();
    const files = EXPLAIN_PICTURES.flatMap((name) => [path.join(out, `${name}.png`), path.join(out, `${name}.svg`)]);
    expect(lines).toEqual([`phoenix\t${expected.join(' ')}`, ...files.map((file) => `wrote ${file}`)]);

    for (const file of files.filter((f) => f.endsWith('.png'))) {
      const png = decode(file);
      expect(png.width).toBeGreaterThan(200);
      expect(png.height).toBeGreaterThan(100);
      expect(fs.statSync(file).size).toBeLessThan(300_000);
    }
    // A grid is as wide as its heads and as tall as its layers: the bundled model has 4 heads, 3 + 3 layers.
    expect(transformer).toMatchObject({ numHeads: 4, numEncoderLayers: 3, numDecoderLayers: 3 });
    const cross = fs.readFileSync(path.join(out, 'cross-attention-grid.svg'), 'utf8');
    const self = fs.readFileSync(path.join(out, 'self-attention-grid.svg'), 'utf8');
    const lens = fs.readFileSync(path.join(out, 'logit-lens.svg'), 'utf8');
    const cellRects = (svg: string) => (svg.match(/<rect x="[\d.]+" y="[\d.]+" width="\d+" height="\d+" fill="#[0-9a-f]{6}"\/>/g) ?? []).length;
    const [letters, decoderInputs] = ['phoenix'.length + 1, expected.length + 1];
    expect(cellRects(cross)).toBe(3 * 4 * decoderInputs * letters);
    expect(cellRects(self)).toBe(3 * 4 * letters * letters);
    expect(cellRects(lens)).toBe(4 * decoderInputs); // embeddings and 3 decoder layers
    for (const label of ['decoder 0', 'decoder 2', 'head 3', '&lt;s&gt;', '&lt;/s&gt;', 'x', expected[0]]) expect(cross).toContain(`>${label}</text>`);
    for (const label of ['encoder 0', 'encoder 2', 'p', 'h']) expect(self).toContain(`>${label}</text>`);
    for (const label of ['embeddings', 'layer 0', 'layer 2 (output)', 'probability', expected[expected.length - 1]]) expect(lens).toContain(`>${label}</text>`);
  });

  it('writes into explain-WORD by default and takes --model DIR', async () => {
    const cwd = process.cwd();
    const here = fs.mkdtempSync(path.join(root, 'cwd-'));
    process.chdir(here);
    try {
      const lines: string[] = [];
      const result = await explainG2P(bundledModelSource(), ' Cat ', { log: (line) => lines.push(line) });
      expect(result.word).toBe('cat');
      expect(result.files).toEqual(EXPLAIN_PICTURES.flatMap((name) => [path.join('explain-cat', `${name}.png`), path.join('explain-cat', `${name}.svg`)]));
      for (const file of result.files) expect(fs.statSync(path.join(here, file)).size).toBeGreaterThan(500);
      expect(lines[0]).toBe(`cat\t${result.pronunciation.join(' ')}`);
      const { code } = await mie('explain', 'g2p', '--model', bundledModelSource(), 'dog');
      expect(code).toBe(0);
      expect(fs.existsSync(path.join(here, 'explain-dog', 'logit-lens.png'))).toBe(true);
    } finally {
      process.chdir(cwd);
    }
  });

  it.each([
    [['explain', 'g2p', '--out', path.join(root, 'x'), 'caf3'], 1, /^mie: explain g2p: "caf3" holds characters the model cannot spell: "3"\. It knows: a b c/],
    [['explain', 'g2p', '--model', path.join(root, 'no-such-model'), 'cat'], 1, /^mie: explain g2p: --model \S+no-such-model cannot be read/],
    [['explain', 'g2p'], 2, /^mie: explain g2p needs one WORD \(mie --help shows the usage\)$/],
    [['explain', 'g2p', 'cat', 'dog'], 2, /^mie: explain g2p takes one WORD, got 2 \(mie --help shows the usage\)$/],
    [['explain', 'g2p', '--beams', '2', 'cat'], 2, /^mie: explain g2p takes no --beams/],
    [['explain', 'lm', 'cat'], 2, /^mie: unknown command "explain lm cat"/],
  ])('refuses %j with one line naming the command', async (args, exitCode, pattern) => {
    const before = tf.memory().numTensors;
    const { code, errors } = await mie(...args);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(pattern);
    expect(code).toBe(exitCode);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses an empty word and an --out that is a file with typed errors', async () => {
    await expect(explainG2P(bundledModelSource(), '  ')).rejects.toThrow(new MieConfigError('mie explain g2p: WORD must hold at least one letter. Received: "  ".'));
    const file = path.join(root, 'a-file');
    fs.writeFileSync(file, 'not a directory');
    await expect(explainG2P(bundledModelSource(), 'cat', { out: file, log: () => undefined })).rejects.toThrow(/^mie explain g2p: --out \S+a-file cannot be made a directory/);
  });

  it('is listed by mie --help, and explains its options with --help', async () => {
    const lines: string[] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
    try {
      expect(await main(['--help'])).toBe(0);
      expect(await main(['explain', 'g2p', '--help'])).toBe(0);
    } finally {
      log.mockRestore();
    }
    expect(lines[0]).toContain('  mie explain g2p [--model DIR] [--out DIR] WORD');
    expect(lines[1].startsWith('usage: mie explain g2p [--model DIR] [--out DIR] WORD')).toBe(true);
    for (const flag of ['--model DIR', '--out DIR']) expect(lines[1]).toContain(`  ${flag}`);
  });
});
