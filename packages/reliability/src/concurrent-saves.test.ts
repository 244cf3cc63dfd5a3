/**
 * Two processes saving into one directory at once both succeed, every time: the directory then
 * loads one save whole (never a mix) and that save is the last one either process finished, and
 * the user's own files named like MIE's temporary files are left alone. (Before, each save
 * deleted every `.mie-tmp-*` file, including the other process's in-flight ones: with 2 x 150
 * saves, 122 failed with ENOENT.)
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { BaseModel, setBackend } from '@mie/core';
import '@mie/layers'; // registers FeedForwardNN, the class the savers write
import { expectBackendHealthy, testBackend } from './helpers';

const FIXTURE = path.resolve(__dirname, '../fixtures/concurrent-save.js');

beforeAll(async () => {
  await setBackend(testBackend());
});

function saver(dir: string, count: number, tag: number, shards: string): Promise<{ code: number | null; saved: number[]; stderr: string }> {
  const child = spawn(process.execPath, [FIXTURE, dir, String(count), String(tag), shards], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  return new Promise((resolve) =>
    child.on('exit', (code) => resolve({ code, stderr, saved: stdout.split('\n').filter(Boolean).map((line) => Number(line.split(' ')[1])) })),
  );
}

async function concurrently(count: number, shards: string): Promise<void> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mie-concurrent-'));
  fs.writeFileSync(path.join(dir, '.mie-tmp-mine'), 'my notes');
  fs.mkdirSync(path.join(dir, '.mie-tmp-folder'));
  fs.writeFileSync(path.join(dir, '.mie-tmp-folder', 'kept'), 'x');
  try {
    const start = performance.now();
    const [a, b] = await Promise.all([saver(dir, count, 1, shards), saver(dir, count, 2, shards)]);
    console.log(`${testBackend()}: 2 x ${count} concurrent ${shards === 'single' ? 'single-file' : 'sharded'} saves in ${((performance.now() - start) / 1000).toFixed(1)} s, all succeeded`);
    for (const run of [a, b]) {
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      expect(run.saved).toHaveLength(count);
    }
    const loaded = await BaseModel.load(dir);
    const values = new Set(loaded.parameters().flatMap((v) => Array.from(v.dataSync())));
    loaded.dispose();
    expect(values.size).toBe(1); // one save, whole
    expect([1000 + count, 2000 + count]).toContain([...values][0]); // the last save of a process
    expect(fs.readFileSync(path.join(dir, '.mie-tmp-mine'), 'utf8')).toBe('my notes');
    expect(fs.readdirSync(path.join(dir, '.mie-tmp-folder'))).toEqual(['kept']);
    expect(fs.readdirSync(dir).filter((f) => /^\.mie-(tmp|prev)-\d/.test(f) || f === '.mie-lock')).toEqual([]);
    expectBackendHealthy();
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

it('2 x 150 concurrent saves of one file all succeed, and the last wins', async () => {
  await concurrently(150, 'single');
});

it('2 x 40 concurrent sharded saves all succeed, and the last wins', async () => {
  await concurrently(40, '600');
});
