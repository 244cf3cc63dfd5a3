import { BeamHypotheses, beamStep, topIndices } from './beam-search';
import {
  applyNoRepeatNgram,
  applyRepetitionPenalty,
  applyTemperature,
  applyTopK,
  applyTopP,
  argmax,
  bannedNgramTokens,
  logSoftmax,
  sampleCategorical,
  samplingDistribution,
  seededRandom,
  softmax,
} from './logits-processors';

/** Pearson's chi-square statistic of observed counts against expected probabilities. */
function chiSquare(counts: number[], probabilities: ArrayLike<number>): number {
  const total = counts.reduce((a, b) => a + b, 0);
  return counts.reduce((sum, count, i) => sum + (count - total * probabilities[i]) ** 2 / (total * probabilities[i]), 0);
}

function drawCounts(probabilities: Float64Array, draws: number, seed: number): number[] {
  const random = seededRandom(seed);
  const counts = new Array<number>(probabilities.length).fill(0);
  for (let i = 0; i < draws; i++) counts[sampleCategorical(probabilities, random)]++;
  return counts;
}

describe('logits processors', () => {
  it('repetition penalty divides positive and multiplies negative logits of generated tokens only (CTRL / HF)', () => {
    const logits = Float64Array.from([2, -2, 1, 0, 0.5]);
    applyRepetitionPenalty(logits, [0, 1, 1, 3], 2);
    expect(Array.from(logits)).toEqual([1, -4, 1, 0, 0.5]);
    const unchanged = Float64Array.from([2, -2]);
    expect(Array.from(applyRepetitionPenalty(unchanged, [0, 1], 1))).toEqual([2, -2]);
    // A penalty below 1 encourages repeats.
    expect(Array.from(applyRepetitionPenalty(Float64Array.from([2, -2]), [0, 1], 0.5))).toEqual([4, -1]);
  });

  it('n-gram blocking bans exactly the tokens that would repeat an n-gram', () => {
    const generated = [1, 2, 3, 1, 2];
    expect(bannedNgramTokens(generated, 3)).toEqual([3]); // 1 2 -> 3 seen
    expect(bannedNgramTokens(generated, 2).sort()).toEqual([3]); // 2 -> 3 seen
    expect(bannedNgramTokens(generated, 1).sort()).toEqual([1, 2, 3]);
    expect(bannedNgramTokens(generated, 4)).toEqual([]); // 3 1 2 never seen before
    expect(bannedNgramTokens([5, 5, 5], 2)).toEqual([5]);
    expect(bannedNgramTokens([4, 5, 4, 6, 4], 2).sort()).toEqual([5, 6]);
    expect(bannedNgramTokens([1], 3)).toEqual([]); // too short
    expect(bannedNgramTokens([1, 2, 1, 2], 0)).toEqual([]); // off
    const logits = applyNoRepeatNgram(Float64Array.from([0, 1, 2, 3, 4]), generated, 3);
    expect(Array.from(logits)).toEqual([0, 1, 2, -Infinity, 4]);
  });

  it('top-k keeps the k largest logits (ties with the k-th too); 0 is off', () => {
    expect(Array.from(applyTopK(Float64Array.from([1, 5, 3, 4]), 2))).toEqual([-Infinity, 5, -Infinity, 4]);
    expect(Array.from(applyTopK(Float64Array.from([1, 5, 4, 4]), 2))).toEqual([-Infinity, 5, 4, 4]);
    expect(Array.from(applyTopK(Float64Array.from([1, 5, 3]), 0))).toEqual([1, 5, 3]);
    expect(argmax(applyTopK(Float64Array.from([1, 5, 3]), 1))).toBe(1);
  });

  it('top-p keeps the smallest most-probable set reaching p, at least one token', () => {
    const logits = Math.log(0.5);
    const row = () => Float64Array.from([Math.log(0.1), logits, Math.log(0.3), Math.log(0.1)]);
    const kept = (p: number) => Array.from(applyTopP(row(), p)).map((v, i) => (v > -Infinity ? i : -1)).filter((i) => i >= 0);
    expect(kept(0.5)).toEqual([1]);
    expect(kept(0.6)).toEqual([1, 2]);
    expect(kept(0.75)).toEqual([1, 2]);
    expect(kept(0.85)).toEqual([0, 1, 2]); // the first of the tied 0.1s
    expect(kept(1)).toEqual([0, 1, 2, 3]);
    expect(kept(1e-9)).toEqual([1]);
  });

  it('softmax and log-softmax are stable and never NaN', () => {
    for (const p of softmax([1000, 1000])) expect(p).toBeCloseTo(0.5, 12);
    expect(Array.from(logSoftmax([-Infinity, -Infinity]))).toEqual([-Infinity, -Infinity]);
    expect(Array.from(softmax([0, -Infinity]))).toEqual([1, 0]);
    expect(Array.from(applyTemperature(Float64Array.from([2, -4]), 2))).toEqual([1, -2]);
  });

  it('seeded draws reproduce and follow the distribution (chi-square)', () => {
    const probabilities = softmax([1, 0.5, 0, -1]);
    expect(drawCounts(probabilities, 100, 9)).toEqual(drawCounts(probabilities, 100, 9));
    expect(drawCounts(probabilities, 100, 9)).not.toEqual(drawCounts(probabilities, 100, 10));
    // 3 degrees of freedom: P(chi2 > 16.27) = 0.001.
    expect(chiSquare(drawCounts(probabilities, 20000, 1), probabilities)).toBeLessThan(16.27);
    expect(sampleCategorical([0, 0, 1, 0], seededRandom(3))).toBe(2);
    expect(sampleCategorical([0, 0, 0], seededRandom(3))).toBe(0);
  });

  it('temperature reshapes the sampled distribution as softmax(logits / T) (chi-square)', () => {
    const logits = [2, 1, 0, -1];
    const draws = 20000;
    const plain = samplingDistribution(logits);
    for (const temperature of [0.5, 2]) {
      const expected = softmax(logits.map((l) => l / temperature));
      const counts = drawCounts(samplingDistribution(logits, { temperature }), draws, 17);
      expect(chiSquare(counts, expected)).toBeLessThan(16.27); // consistent with softmax(logits / T)
      expect(chiSquare(counts, plain)).toBeGreaterThan(200); // and not with T = 1
    }
    const frequency = (t: number) => drawCounts(samplingDistribution(logits, { temperature: t }), draws, 5)[0] / draws;
    expect(frequency(0.5)).toBeGreaterThan(frequency(1));
    expect(frequency(1)).toBeGreaterThan(frequency(2));
    // Warpers compose: top-k 2 at T = 2 only ever draws the two best tokens, in ratio e^(1/2).
    const counts = drawCounts(samplingDistribution(logits, { temperature: 2, topK: 2 }), draws, 8);
    expect(counts[2] + counts[3]).toBe(0);
    expect(chiSquare(counts.slice(0, 2), softmax([1, 0.5]))).toBeLessThan(10.83); // 1 dof, p = 0.001
  });
});

describe('beam bookkeeping', () => {
  it('topIndices returns the best finite entries, ties by index', () => {
    expect(topIndices([1, 3, 3, -Infinity, 2], 3)).toEqual([1, 2, 4]);
    expect(topIndices([-Infinity, 0], 5)).toEqual([1]);
  });

  it('BeamHypotheses keeps the best numBeams by length-penalised score', () => {
    const kept = new BeamHypotheses(2, 1);
    kept.add([5, 2], -2); // score -1
    kept.add([6, 7, 2], -4.5); // -1.5
    kept.add([3], -0.5); // -0.5
    kept.add([4, 2], -Infinity); // never
    expect(kept.best().map((h) => h.tokens)).toEqual([[3], [5, 2]]);
    expect(kept.worstScore).toBe(-1);
    // lengthPenalty > 0: the bound uses the longest possible length.
    expect(kept.isDone(-3, 2, 4, false)).toBe(false); // -3 / 4 > -1
    expect(kept.isDone(-5, 2, 4, false)).toBe(true);
    expect(kept.isDone(0, 1, 4, true)).toBe(true);
    expect(new BeamHypotheses(2, 1).isDone(-1, 1, 4, true)).toBe(false);
    expect(new BeamHypotheses(2, 1).isDone(-Infinity, 1, 4, false)).toBe(true);
    // lengthPenalty <= 0: the bound uses the current length.
    const short = new BeamHypotheses(1, 0);
    short.add([2], -1);
    expect(short.isDone(-0.9, 3, 10, false)).toBe(false);
    expect(short.isDone(-1.1, 3, 10, false)).toBe(true);
  });

  it('beamStep moves EOS extensions ranked within numBeams to the finished list and keeps the best others', () => {
    const EOS = 0;
    const kept = new BeamHypotheses(2, 1);
    const beams = [
      { tokens: [4], sumLogProbs: -1 },
      { tokens: [5], sumLogProbs: -2 },
    ];
    const rows = [Float64Array.from([-0.1, -3, -2, -4]), Float64Array.from([-2, -0.5, -5, -6])];
    const step = beamStep(beams, rows, kept, { eosTokenId: EOS, filler: 9 });
    // Ranked: [4,EOS] -1.1, [5,1] -2.5, [4,2] -3, [5,EOS] -4: the second EOS is ranked 3 >= numBeams, so dropped.
    expect(kept.best().map((h) => h.tokens)).toEqual([[4, EOS]]);
    expect(step.beams.map((b) => b.tokens)).toEqual([[5, 1], [4, 2]]);
    expect(step.sources).toEqual([1, 0]);
    expect(step.tokens).toEqual([1, 2]);
    // Dead beams stay dead and are filled.
    const dead = beamStep([{ tokens: [], sumLogProbs: 0 }, { tokens: [], sumLogProbs: -Infinity }], [Float64Array.from([-Infinity, 0]), Float64Array.from([0, 0])], new BeamHypotheses(2, 1), { eosTokenId: null, filler: 9 });
    expect(dead.beams).toEqual([{ tokens: [1], sumLogProbs: 0 }, { tokens: [9], sumLogProbs: -Infinity }]);
    expect(dead.sources).toEqual([0, 1]);
  });
});
