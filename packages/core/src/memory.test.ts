import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { setBackend } from './backend';
import { MieConfigError, MieResourceError } from './errors';
import { WASM_HEAP_BYTES, checkAllocation, float32Bytes, memoryStatus, setMemoryLimit } from './memory';
import { tf } from './tfjs';

const healthy = () => tf.tidy(() => tf.add(tf.scalar(2), tf.scalar(3)).dataSync()[0]) === 5;

afterEach(() => setMemoryLimit(null));

describe('memory limits', () => {
  it('reports the limit of each backend and refuses what does not fit', async () => {
    await setBackend('cpu');
    const cpu = memoryStatus();
    expect(cpu.backend).toBe('cpu');
    expect(cpu.limit).toBeGreaterThan(1e9);
    expect(cpu.used).toBeGreaterThan(0);
    expect(() => checkAllocation('Test', 'a small tensor', 1024)).not.toThrow();
    expect(() => checkAllocation('Test', 'a huge tensor [1e9, 1e3]', float32Bytes(1e9, 1e3))).toThrow(MieResourceError);
    expect(() => checkAllocation('Test', 'a huge tensor [1e9, 1e3]', float32Bytes(1e9, 1e3))).toThrow(
      /^Test: a huge tensor \[1e9, 1e3\] needs 3\.6 TiB, but the cpu backend has .* left of its .* limit/,
    );
    await setBackend('wasm');
    const wasm = memoryStatus();
    expect(wasm.limit).toBeLessThan(WASM_HEAP_BYTES);
    expect(wasm.limit).toBeGreaterThan(3 * 2 ** 30);
  });

  it('takes a limit from setMemoryLimit and from MIE_MEMORY_LIMIT', async () => {
    await setBackend('cpu');
    setMemoryLimit(2 ** 40);
    expect(memoryStatus().limit).toBe(2 ** 40);
    setMemoryLimit(1);
    expect(() => checkAllocation('Test', 'a byte more', 2)).toThrow(MieResourceError);
    expect(() => setMemoryLimit(-1)).toThrow(MieConfigError);
    const probe = `const core = require(${JSON.stringify(path.resolve(__dirname, '..'))}); core.setBackend('cpu').then(() => console.log(core.memoryStatus().limit));`;
    const run = (value: string) => execFileSync(process.execPath, ['-e', probe], { env: { ...process.env, MIE_MEMORY_LIMIT: value }, encoding: 'utf8' }).trim();
    expect(run('1.5G')).toBe(String(1.5 * 2 ** 30));
    expect(run('12345')).toBe('12345');
    expect(() => run('lots')).toThrow(/MIE_MEMORY_LIMIT must be a number of bytes/);
  });

  it('is infinite for sizes that overflow', () => {
    expect(float32Bytes(2 ** 40, 2 ** 40)).toBe(Infinity);
    expect(float32Bytes(3, 4)).toBe(48);
  });
});

describe('the wasm allocation guard', () => {
  it('refuses a 4 GiB request and a full heap with a MieResourceError, and the backend keeps computing', async () => {
    await setBackend('wasm');
    const before = tf.memory().numTensors;
    // 2^30 floats are 2^32 bytes: the 32-bit allocator would truncate the request to 0.
    expect(() => tf.zeros([2 ** 30])).toThrow(MieResourceError);
    expect(() => tf.zeros([2 ** 30])).toThrow(/exceeds the 4\.0 GiB heap; nothing was allocated/);
    expect(healthy()).toBe(true);
    const held: tf.Tensor[] = [];
    let refused: unknown;
    try {
      for (let i = 0; i < 8; i++) held.push(tf.zeros([2 ** 28])); // 1 GiB each
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(MieResourceError);
    expect((refused as Error).message).toMatch(/the heap is full/);
    expect(held.length).toBeGreaterThanOrEqual(2);
    expect(healthy()).toBe(true);
    expect(Array.from(tf.tidy(() => tf.matMul(tf.tensor2d([[1, 2]]), tf.tensor2d([[3], [4]])).dataSync()))).toEqual([11]);
    tf.dispose(held);
    expect(tf.memory().numTensors).toBe(before);
    expect(healthy()).toBe(true);
  });
});
