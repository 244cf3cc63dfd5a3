import { dropoutMask } from './dropout';
import { mulberry32 } from './random';

/** The mask as documented, in unsigned arithmetic with a branch: xorshift128 from mulberry32. */
function referenceMask(size: number, rate: number, seed: number): Float32Array {
  let state = seed >>> 0;
  const words: number[] = [];
  for (let i = 0; i < 4; i++) {
    let output: number;
    [state, output] = mulberry32(state);
    words.push(output >>> 0);
  }
  let [x, y, z, w] = words;
  x = (x | 1) >>> 0;
  const threshold = Math.min(0xffffffff, Math.round(rate * 4294967296));
  const mask = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    const t = (x ^ (x << 11)) >>> 0;
    [x, y, z] = [y, z, w];
    w = (w ^ (w >>> 19) ^ t ^ (t >>> 8)) >>> 0;
    mask[i] = w >= threshold ? 1 / (1 - rate) : 0;
  }
  return mask;
}

describe('dropoutMask', () => {
  it('is the documented xorshift128 keep-mask, bit for bit, for any seed and rate', () => {
    for (const seed of [0, 1, 12_345, 0x7fffffff, 0xffffffff]) {
      for (const rate of [0.01, 0.1, 0.25, 0.5, 0.9]) {
        const mask = dropoutMask(10_007, rate, seed);
        const expected = referenceMask(10_007, rate, seed);
        expect(mask.length).toBe(expected.length);
        let differing = 0;
        for (let i = 0; i < mask.length; i++) if (!Object.is(mask[i], expected[i])) differing++;
        expect(differing).toBe(0);
        // The kept share is 1 - rate (10,007 draws: within 2% absolute).
        const kept = mask.filter((v) => v !== 0).length / mask.length;
        expect(Math.abs(kept - (1 - rate))).toBeLessThan(0.02);
        expect(mask.every((v) => v === 0 || v === Math.fround(1 / (1 - rate)))).toBe(true);
      }
    }
  });
});
