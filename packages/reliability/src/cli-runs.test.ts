/**
 * The `mie` command line against what a user can type and what a directory can hold, on the
 * backend of this run of the suite: every failure is one line `mie: ...` and a non-zero exit
 * code (2 for usage, 1 otherwise), leaks no tensor and leaves the backend computing; a directory
 * holding a run is never overwritten without --resume or --force, and --force keeps the user's
 * files. The CLI is loaded from its sources (this package does not depend on @mie/cli, so its
 * dist/ may be stale or absent); two probes run it as a real process.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CONFIG_FILE, WEIGHTS_FILE, setBackend, tf } from '@mie/core';
import { G2PModel, run, trainIris } from '@mie/cli';
import { REPO_ROOT, expectBackendHealthy, testBackend } from './helpers';

const TINY = { dModel: 16, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 32, dropout: 0, maxSeqLength: 64 };
const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

let root: string;
const at = (...parts: string[]) => path.join(root, ...parts);

beforeAll(async () => {
  await setBackend(testBackend());
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-cli-runs-'));
  const model = new G2PModel({ transformer: TINY });
  await model.save(at('model'));
  model.dispose();
  fs.mkdirSync(at('fifo-config'));
  execFileSync('mkfifo', [at('fifo-config', CONFIG_FILE)]);
  fs.copyFileSync(at('model', WEIGHTS_FILE), at('fifo-config', WEIGHTS_FILE));
  fs.mkdirSync(at('hostile'));
  const config = JSON.parse(fs.readFileSync(at('model', CONFIG_FILE), 'utf8'));
  fs.writeFileSync(at('hostile', CONFIG_FILE), JSON.stringify({ ...config, config: { ...config.config, transformer: { __proto__: { toString: 1 }, constructor: { name: { toString: 1 } } } } }));
  fs.copyFileSync(at('model', WEIGHTS_FILE), at('hostile', WEIGHTS_FILE));
});
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

/** Runs `mie ARGS` in this process and checks the failure contract; returns the one stderr line. */
async function refused(args: string[], code: 1 | 2, pattern: RegExp): Promise<string> {
  const errors: string[] = [];
  const tensors = tf.memory().numTensors;
  const log = jest.spyOn(console, 'log').mockImplementation(() => undefined);
  let exit: number;
  try {
    exit = await run(args, { error: (line) => errors.push(line) });
  } finally {
    log.mockRestore();
  }
  expect(errors).toHaveLength(1);
  expect(errors[0]).toMatch(/^mie: /);
  expect(errors[0]).not.toMatch(/\n|\(\S+:\d+:\d+\)/);
  expect(errors[0]).toMatch(pattern);
  expect(exit).toBe(code);
  expect(tf.memory().numTensors).toBe(tensors);
  expectBackendHealthy();
  return errors[0];
}

describe(`mie command line (${testBackend()})`, () => {
  it.each<[string, string[], 1 | 2, RegExp]>([
    ['an empty word', ['pronounce', '--model', 'MODEL', ''], 1, /^mie: pronounce: WORD 1 of 1 must hold at least one letter\. Received: ""\.$/],
    ['a whitespace word', ['pronounce', '--model', 'MODEL', '\u00a0 \t'], 1, /^mie: pronounce: WORD 1 of 1 must hold at least one letter/],
    ['a word the model cannot spell', ['pronounce', '--model', 'MODEL', 'x\u0000y'], 1, /cannot spell/],
    ['a word longer than the model takes', ['pronounce', '--model', 'MODEL', 'a'.repeat(500)], 1, /maxSeqLength is 64/],
    ['--out under a regular file', ['train', 'g2p', '--out', '/dev/null/x'], 1, /^mie: train g2p: cannot use --out \/dev\/null\/x: ENOTDIR/],
    ['--out under a regular file (iris)', ['train', 'iris', '--out', '/dev/null/x'], 1, /^mie: train iris: cannot use --out \/dev\/null\/x: ENOTDIR/],
    ['--model that does not exist', ['eval', 'g2p', '--model', '/nonexistent'], 1, /^mie: eval g2p: --model \/nonexistent cannot be read: ENOENT/],
    ['--model /dev/null', ['inspect', '--model', '/dev/null'], 1, /^mie: inspect: --model \/dev\/null must be a model directory .*; it is a character device\.$/],
    ['--model holding a FIFO config.json', ['inspect', '--model', 'ROOT/fifo-config'], 1, /config\.json must be a regular file; it is a FIFO \(named pipe\)\.$/],
    ['--model with a hostile config.json', ['inspect', '--model', 'ROOT/hostile'], 1, /hostile.*unknown option "constructor"/],
    ['--beams 0', ['pronounce', '--beams', '0', '--model', 'MODEL', 'word'], 2, /--beams must be an integer in \[1, 64\], got "0"/],
    ['--beams 1e6', ['eval', 'g2p', '--beams', '1e6', '--model', 'MODEL'], 2, /--beams must be an integer in \[1, 64\], got "1e6"/],
    ['--minutes -1', ['train', 'g2p', '--minutes', '-1'], 2, /--minutes must be a number in \(0, 100000\], got "-1"/],
    ['--minutes NaN', ['train', 'g2p', '--minutes', 'NaN'], 2, /--minutes must be a number/],
    ['--seed x', ['train', 'iris', '--seed', 'x'], 2, /--seed must be an integer >= 0, got "x"/],
    ['--seed -1', ['train', 'iris', '--seed', '-1'], 2, /--seed must be an integer >= 0, got "-1"/],
    ['an unknown flag', ['inspect', '--model', 'MODEL', '--verbose'], 2, /Unknown option '--verbose'/],
    ['a flag of another command', ['inspect', '--model', 'MODEL', '--force'], 2, /inspect takes no --force/],
    ['--resume with --force', ['train', 'iris', '--resume', '--force'], 2, /--resume and --force cannot be combined/],
  ])('%s: one line and a non-zero exit code', async (_, args, code, pattern) => {
    await refused(args.map((arg) => arg.replace('MODEL', at('model')).replace('ROOT', root)), code, pattern);
  });

  it('never overwrites a run: refuses it, --resume continues it, --force starts over keeping the user\'s files', async () => {
    const out = at('iris-run');
    const logs: string[] = [];
    const { accuracy } = await trainIris({ out, seed: 3, log: (line) => logs.push(line) });
    fs.writeFileSync(path.join(out, 'notes.txt'), 'mine');
    const before = Object.fromEntries(['config.json', 'model.safetensors', 'train/last/checkpoint.safetensors'].map((f) => [f, fs.readFileSync(path.join(out, f)).toString('base64')]));
    await refused(['train', 'iris', '--out', out, '--seed', '3'], 1, new RegExp(`^mie: train iris: ${escape(out)} already holds a run \\(config\\.json, model\\.safetensors, train\\); pass --resume to continue it or --force to start over\\.$`));
    const after = Object.fromEntries(Object.keys(before).map((f) => [f, fs.readFileSync(path.join(out, f)).toString('base64')]));
    expect(after).toEqual(before);
    // A resume with another seed does not fit the run: refused by the Trainer, naming the checkpoint.
    await refused(['train', 'iris', '--out', out, '--seed', '4', '--resume'], 1, new RegExp(`cannot resume from ${escape(path.join(out, 'train', 'last', 'checkpoint.safetensors'))}: it was trained with seed 3, this run has seed 4`));
    expect((await trainIris({ out, seed: 3, resume: true, log: () => undefined })).accuracy).toBe(accuracy);
    expect((await trainIris({ out, seed: 3, force: true, log: () => undefined })).accuracy).toBe(accuracy);
    expect(fs.readFileSync(path.join(out, 'notes.txt'), 'utf8')).toBe('mine');

    // A G2P run directory (made by hand: no training needed to test the rule), and a hostile resume.
    const g2p = at('g2p-run');
    fs.mkdirSync(path.join(g2p, 'train', 'last'), { recursive: true });
    fs.writeFileSync(path.join(g2p, 'train', 'g2p-config.json'), '{"constructor":{"name":{"toString":1}}}');
    fs.copyFileSync(at('model', WEIGHTS_FILE), path.join(g2p, 'train', 'last', 'checkpoint.safetensors'));
    fs.writeFileSync(path.join(g2p, 'metrics.json'), '{}');
    await refused(['train', 'g2p', '--out', g2p, '--minutes', '30'], 1, /already holds a run \(metrics\.json, train\); pass --resume to continue it or --force to start over\.$/);
    await refused(['train', 'g2p', '--out', g2p, '--resume'], 1, new RegExp(`^mie: train g2p: cannot resume: ${escape(path.join(g2p, 'train', 'g2p-config.json'))} does not describe a G2P run: G2PModel: unknown option "constructor"`));
    await refused(['train', 'g2p', '--out', at('empty'), '--resume'], 1, /cannot resume: .*empty\/train\/g2p-config\.json is missing or unreadable \(ENOENT/);
    expect(fs.readFileSync(path.join(g2p, 'metrics.json'), 'utf8')).toBe('{}');
  }, 120_000);

  it('as a real process: one line on stderr, exit 1, no stack', () => {
    // A tiny TypeScript loader (the sources, not a possibly stale dist/), with the source export condition.
    const hook = at('ts-hook.js');
    fs.writeFileSync(
      hook,
      `const fs = require('fs'); const ts = require(${JSON.stringify(require.resolve('typescript', { paths: [REPO_ROOT] }))});\n` +
        "require.extensions['.ts'] = (m, file) => m._compile(ts.transpileModule(fs.readFileSync(file, 'utf8'), { fileName: file, compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } }).outputText, file);\n",
    );
    const bin = path.join(REPO_ROOT, 'packages', 'cli', 'src', 'bin.ts');
    for (const [args, pattern] of [
      [['train', 'g2p', '--out', '/dev/null/x'], /^mie: train g2p: cannot use --out \/dev\/null\/x: ENOTDIR/],
      [['inspect', '--model', at('fifo-config')], /config\.json must be a regular file; it is a FIFO/],
    ] as const) {
      const child = spawnSync(process.execPath, ['--conditions=@mie/source', '-r', hook, bin, ...args], {
        encoding: 'utf8',
        env: { ...process.env, MIE_BACKEND: testBackend() },
        timeout: 60_000,
      });
      expect(child.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(child.stderr).toMatch(pattern);
      expect(child.stdout).toBe('');
      expect(child.status).toBe(1);
    }
  }, 120_000);
});
