import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { MieConfigError } from '@mie/core';
import { G2P_RUN, IRIS_RUN, prepareRunDirectory, runEntries } from './run-directory';

let root: string;
beforeEach(() => {
  root = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-run-dir-'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

/** A directory as a g2p run leaves it, plus the user's own files. */
function g2pRun(dir: string): void {
  fs.mkdirSync(path.join(dir, 'train', 'last'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'train', 'g2p-config.json'), '{}');
  fs.writeFileSync(path.join(dir, 'train', 'last', 'checkpoint.safetensors'), 'x');
  fs.mkdirSync(path.join(dir, 'model'));
  fs.writeFileSync(path.join(dir, 'model', 'config.json'), '{}');
  for (const name of ['metrics.json', 'loss-curve.png', 'attention-hello.png', 'attention-o_neil.png', '.mie-tmp-1.abcdef01.0123456789ab-metrics.json']) fs.writeFileSync(path.join(dir, name), 'x');
  for (const name of ['notes.txt', 'attention.png', 'Attention-X.png', 'metrics.json.bak']) fs.writeFileSync(path.join(dir, name), 'mine');
  fs.mkdirSync(path.join(dir, 'data'));
  fs.writeFileSync(path.join(dir, 'data', 'words.txt'), 'mine');
}

const thrown = (promise: Promise<unknown>) => promise.then(() => null, (error: Error) => error);

describe('prepareRunDirectory', () => {
  it('accepts an absent or empty directory (and creates it), or one with only other files', async () => {
    const absent = path.join(root, 'a', 'b');
    await prepareRunDirectory(absent, G2P_RUN);
    expect(fs.statSync(absent).isDirectory()).toBe(true);
    await prepareRunDirectory(absent, G2P_RUN);
    fs.writeFileSync(path.join(absent, 'notes.txt'), 'mine');
    await prepareRunDirectory(absent, G2P_RUN);
    expect(fs.readFileSync(path.join(absent, 'notes.txt'), 'utf8')).toBe('mine');
  });

  it('refuses a directory holding a run unless --resume or --force is given, saying which', async () => {
    g2pRun(root);
    for (const entries of [['metrics.json'], ['train'], ['model'], ['loss-curve.png'], ['attention-hello.png']]) {
      const dir = path.join(root, `only-${entries[0]}`);
      fs.mkdirSync(dir);
      fs.cpSync(path.join(root, entries[0]), path.join(dir, entries[0]), { recursive: true });
      const error = await thrown(prepareRunDirectory(dir, G2P_RUN));
      expect(error).toBeInstanceOf(MieConfigError);
      expect(error!.message).toBe(`mie train g2p: ${dir} already holds a run (${entries[0]}); pass --resume to continue it or --force to start over.`);
    }
    const before = fs.readdirSync(root).sort();
    const error = await thrown(prepareRunDirectory(root, G2P_RUN));
    expect(error!.message).toMatch(/already holds a run \(\.mie-tmp-.*, attention-hello\.png, attention-o_neil\.png, loss-curve\.png, metrics\.json, model, train\); pass --resume/);
    // Refusing touches nothing.
    expect(fs.readdirSync(root).sort()).toEqual(before);
    await prepareRunDirectory(root, G2P_RUN, { resume: true });
    expect(fs.readdirSync(root).sort()).toEqual(before);
  });

  it('--force removes exactly the files a run writes and keeps the user\'s', async () => {
    g2pRun(root);
    const link = path.join(root, 'elsewhere');
    fs.mkdirSync(link);
    fs.writeFileSync(path.join(link, 'keep.txt'), 'mine');
    // A run folder that is a symbolic link: the link goes, never what it points to.
    fs.rmSync(path.join(root, 'model'), { recursive: true });
    fs.symlinkSync(link, path.join(root, 'model'));
    await prepareRunDirectory(root, G2P_RUN, { force: true });
    expect(fs.readdirSync(root).sort()).toEqual(['Attention-X.png', 'attention.png', 'data', 'elsewhere', 'metrics.json.bak', 'notes.txt']);
    expect(fs.readFileSync(path.join(link, 'keep.txt'), 'utf8')).toBe('mine');
    expect(fs.readFileSync(path.join(root, 'data', 'words.txt'), 'utf8')).toBe('mine');
  });

  it('--resume needs a run, naming the missing file; --resume with --force is refused', async () => {
    const error = await thrown(prepareRunDirectory(root, G2P_RUN, { resume: true }));
    expect(error).toBeInstanceOf(MieConfigError);
    expect(error!.message).toMatch(new RegExp(`^mie train g2p: cannot resume: ${path.join(root, 'train', 'g2p-config.json').replace(/[.]/g, '\\.')} is missing or unreadable \\(ENOENT.*\\); ${root.replace(/[.]/g, '\\.')} holds no run to continue\\.$`));
    fs.mkdirSync(path.join(root, 'train'));
    fs.writeFileSync(path.join(root, 'train', 'g2p-config.json'), '{}');
    expect((await thrown(prepareRunDirectory(root, G2P_RUN, { resume: true })))!.message).toMatch(/last\/checkpoint\.safetensors is missing/);
    expect((await thrown(prepareRunDirectory(root, IRIS_RUN, { resume: true, force: true })))!.message).toMatch(/^mie train iris: --resume and --force cannot be combined/);
  });

  it('names a directory that cannot be used: under a regular file, or a file itself', async () => {
    const file = path.join(root, 'file');
    fs.writeFileSync(file, 'x');
    const under = await thrown(prepareRunDirectory(path.join(file, 'x'), G2P_RUN));
    expect(under).toBeInstanceOf(MieConfigError);
    expect(under!.message).toMatch(new RegExp(`^mie train g2p: cannot use --out ${path.join(file, 'x').replace(/[.]/g, '\\.')}: ENOTDIR`));
    expect((under as Error & { cause: { code: string } }).cause.code).toBe('ENOTDIR');
    expect((await thrown(prepareRunDirectory(file, IRIS_RUN)))!.message).toBe(`mie train iris: --out ${file} is not a directory.`);
  });

  it('knows an iris run by its model files and trainer state', async () => {
    fs.writeFileSync(path.join(root, 'model.safetensors'), 'x');
    fs.writeFileSync(path.join(root, 'metrics.json'), 'not an iris file');
    expect(await runEntries(root, IRIS_RUN)).toEqual(['model.safetensors']);
    await prepareRunDirectory(root, IRIS_RUN, { force: true });
    expect(fs.readdirSync(root)).toEqual(['metrics.json']);
  });
});
