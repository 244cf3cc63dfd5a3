/**
 * Reproducible randomness. tfjs random ops are deterministic only when given a seed, so every
 * MIE call that draws random numbers (initialisers, dropout) asks `nextSeed()` for one. After
 * `setSeed(n)` the sequence of seeds, and so every initialisation and dropout mask, is the same
 * run to run on the same backend.
 */

let state: number | null = null;

/** Seeds every initialiser and dropout mask that MIE draws from now on. */
export function setSeed(seed: number): void {
  if (!Number.isFinite(seed)) throw new TypeError(`setSeed: seed must be a finite number. Received: ${seed}.`);
  state = Math.floor(seed) >>> 0;
}

/** Forgets the seed: later draws are seeded from `Math.random()` again. */
export function clearSeed(): void {
  state = null;
}

/** One mulberry32 step: the next state and a well-mixed 32-bit output. */
export function mulberry32(current: number): [state: number, output: number] {
  const next = (current + 0x6d2b79f5) >>> 0;
  let t = next;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return [next, (t ^ (t >>> 14)) >>> 0];
}

/** The next seed for a tfjs random op (a 32-bit integer). */
export function nextSeed(): number {
  if (state === null) return Math.floor(Math.random() * 0x7fffffff);
  let output: number;
  [state, output] = mulberry32(state);
  return output & 0x7fffffff;
}

/**
 * An independent seeded generator of uniform floats in [0, 1) (mulberry32): the same seed gives
 * the same draws on every platform. It does not touch the global seed.
 */
export function seededRandom(seed: number): () => number {
  let current = Math.floor(seed) >>> 0;
  return () => {
    let output: number;
    [current, output] = mulberry32(current);
    return output / 4294967296;
  };
}
