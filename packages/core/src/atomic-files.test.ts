import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { hostTag, previousVersions, writeFilesAtomically } from './atomic-files';

let root: string;
beforeAll(async () => {
  root = await fsp.mkdtemp(path.join(os.tmpdir(), 'mie-atomic-'));
});
afterAll(async () => {
  await fsp.rm(root, { recursive: true, force: true });
});
let counter = 0;
const freshDir = () => path.join(root, `d${counter++}`);
const bytes = (text: string) => new TextEncoder().encode(text);
const read = (dir: string, name: string) => fs.readFileSync(path.join(dir, name), 'utf8');

/** The pid of a process that has exited (so that files named after it are a dead writer's). */
function deadPid(): number {
  const child = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(child.stdout);
}

describe('writeFilesAtomically', () => {
  it('writes a group of files, streamed chunks included, and renames them in order', async () => {
    const dir = freshDir();
    const streamed = { byteLength: 6, *chunks() { yield bytes('abc'); yield bytes('def'); } };
    await writeFilesAtomically(dir, [['a.bin', streamed], ['b.txt', bytes('second')]]);
    expect(read(dir, 'a.bin')).toBe('abcdef');
    expect(read(dir, 'b.txt')).toBe('second');
    expect(fs.readdirSync(dir).sort()).toEqual(['a.bin', 'b.txt']);
    // A stream that yields a different length than it announced fails, leaving the old files.
    const lying = { byteLength: 10, *chunks() { yield bytes('short'); } };
    await expect(writeFilesAtomically(dir, [['a.bin', lying]])).rejects.toThrow(/wrote 5 bytes .* expected 10/);
    expect(read(dir, 'a.bin')).toBe('abcdef');
    expect(fs.readdirSync(dir).sort()).toEqual(['a.bin', 'b.txt']);
    await expect(writeFilesAtomically(dir, [['../escape', bytes('x')]])).rejects.toThrow(/plain names/);
  });

  it('lets concurrent writers of one directory take turns: all succeed, the last one wins, never a mix', async () => {
    const dir = freshDir();
    const writes = Array.from({ length: 40 }, (_, i) =>
      writeFilesAtomically(dir, [['weights', bytes(`w${i}`)], ['config', bytes(`c${i}`)]]).then(() => i),
    );
    const finished = await Promise.all(writes);
    expect(finished).toHaveLength(40);
    const weights = read(dir, 'weights').slice(1);
    expect(read(dir, 'config').slice(1)).toBe(weights);
    expect(fs.readdirSync(dir).sort()).toEqual(['config', 'weights']);
  });

  it("removes the temporary files of a writer that stopped, and a dead writer's lock, never a user's look-alikes", async () => {
    const dir = freshDir();
    await fsp.mkdir(dir, { recursive: true });
    const dead = deadPid();
    fs.writeFileSync(path.join(dir, '.mie-tmp-notes'), 'mine');
    fs.mkdirSync(path.join(dir, '.mie-tmp-0.00000000.0123456789ab-folder'));
    fs.writeFileSync(path.join(dir, `.mie-tmp-${dead}.00000000.0123456789ab-model.safetensors`), 'half-written');
    // A lock left by a process that died on this host is broken at once.
    fs.writeFileSync(path.join(dir, '.mie-lock'), JSON.stringify({ pid: dead, host: hostTag(), token: 'x' }));
    const start = performance.now();
    await writeFilesAtomically(dir, [['file', bytes('new')]]);
    expect(performance.now() - start).toBeLessThan(2000);
    expect(fs.readdirSync(dir).sort()).toEqual(['.mie-tmp-0.00000000.0123456789ab-folder', '.mie-tmp-notes', 'file']);
    expect(read(dir, '.mie-tmp-notes')).toBe('mine');
    // A lock of another host is broken once it has not been refreshed for 30 s.
    fs.writeFileSync(path.join(dir, '.mie-lock'), JSON.stringify({ pid: 1, host: '00000000', token: 'y' }));
    const old = new Date(Date.now() - 60_000);
    fs.utimesSync(path.join(dir, '.mie-lock'), old, old);
    await writeFilesAtomically(dir, [['file', bytes('newer')]]);
    expect(read(dir, 'file')).toBe('newer');
    expect(fs.existsSync(path.join(dir, '.mie-lock'))).toBe(false);
  });

  it('keeps the previous version of `keepPrevious` files until the whole group is in place', async () => {
    const dir = freshDir();
    await writeFilesAtomically(dir, [['shard', bytes('old shard')], ['index', bytes('old index')]]);
    // A write that fails after its first rename: the old shard survives as a backup.
    let renames = 0;
    const failing = {
      ...fsp,
      rename: (async (from: string, to: string) => {
        if (renames++ === 1) throw new Error('injected failure');
        return fsp.rename(from, to);
      }) as typeof fsp.rename,
    };
    await expect(
      writeFilesAtomically(dir, [['shard', bytes('new shard')], ['index', bytes('new index')]], { fs: failing, keepPrevious: ['shard'] }),
    ).rejects.toThrow('injected failure');
    expect(read(dir, 'index')).toBe('old index');
    const backups = await previousVersions(dir, 'shard');
    expect(backups).toHaveLength(1);
    expect(fs.readFileSync(backups[0], 'utf8')).toBe('old shard');
    // The next complete write commits a new group: the backup is no longer needed.
    await writeFilesAtomically(dir, [['shard', bytes('newer')], ['index', bytes('newer index')]], { keepPrevious: ['shard'], remove: (name) => name === 'stale' });
    expect(await previousVersions(dir, 'shard')).toEqual([]);
    expect(read(dir, 'shard')).toBe('newer');
  });
});

describe('the directory lock', () => {
  it('is not left behind when its owner cannot be written (a full disk), and an ownerless one is broken', async () => {
    const dir = freshDir();
    await fsp.mkdir(dir, { recursive: true });
    const full = {
      ...fsp,
      open: (async (file: string, flags: string) => {
        const handle = await fsp.open(file, flags);
        if (!file.endsWith('.mie-lock')) return handle;
        return new Proxy(handle, {
          get(target, prop) {
            if (prop === 'write') return async () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); };
            const value = Reflect.get(target, prop);
            return typeof value === 'function' ? value.bind(target) : value;
          },
        });
      }) as typeof fsp.open,
    };
    await expect(writeFilesAtomically(dir, [['file', bytes('x')]], { fs: full })).rejects.toThrow(/ENOSPC/);
    expect(fs.existsSync(path.join(dir, '.mie-lock'))).toBe(false);
    // An empty lock (a writer that died between creating and filling it) is broken after 3 s.
    fs.writeFileSync(path.join(dir, '.mie-lock'), '');
    const old = new Date(Date.now() - 4000);
    fs.utimesSync(path.join(dir, '.mie-lock'), old, old);
    const start = performance.now();
    await writeFilesAtomically(dir, [['file', bytes('y')]]);
    expect(performance.now() - start).toBeLessThan(1000);
    expect(read(dir, 'file')).toBe('y');
  });
});
