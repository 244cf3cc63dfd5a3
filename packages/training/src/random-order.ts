/**
 * Seeded, stateless randomness for data order and for resuming: every value here is a pure
 * function of its seeds, so a resumed run recomputes exactly what the interrupted run drew.
 */
import { seededRandom } from '@mie/core';

/** Mixes integers into one well-spread 31-bit seed (a murmur3-style finaliser over each part). */
export function mixSeeds(...parts: number[]): number {
  let h = 0x9e3779b9;
  for (const part of parts) {
    // Fold in the low and high 32 bits, so steps beyond 2^32 still differ.
    for (const word of [part >>> 0, Math.floor(part / 0x100000000) >>> 0]) {
      h = Math.imul(h ^ word, 0x85ebca6b);
      h ^= h >>> 13;
      h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
    }
  }
  return (h >>> 0) & 0x7fffffff;
}

/** A mulberry32 generator of floats in [0, 1), seeded with `seed` (@mie/core's `seededRandom`). */
export const seededUniform: (seed: number) => () => number = seededRandom;

/** A permutation of `0 .. n-1`, the same for the same `seed` (Fisher-Yates with mulberry32). */
export function seededPermutation(n: number, seed: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const random = seededUniform(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  return order;
}
