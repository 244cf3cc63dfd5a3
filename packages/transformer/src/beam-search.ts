/**
 * The bookkeeping of beam search (as Hugging Face's `BeamSearchScorer` / `BeamHypotheses`), in
 * plain JavaScript on log-probabilities read back from the model: choosing each step's beams,
 * moving hypotheses that end with EOS to a finished list, and deciding when a source is done.
 * The model calls live in generation.ts.
 *
 * Scores: a hypothesis's score is `sum of its tokens' log-probabilities / generatedLength **
 * lengthPenalty`, where generatedLength counts the generated tokens including the EOS (not the BOS).
 */

/** A finished hypothesis: generated tokens (with the EOS when it has one) and its score. */
export interface BeamHypothesis {
  tokens: number[];
  /** Sum of log-probabilities of `tokens`. */
  sumLogProbs: number;
  /** `sumLogProbs / tokens.length ** lengthPenalty`. */
  score: number;
}

/** The best `numBeams` finished hypotheses of one source. */
export class BeamHypotheses {
  readonly #numBeams: number;
  readonly #lengthPenalty: number;
  readonly #hypotheses: BeamHypothesis[] = [];

  constructor(numBeams: number, lengthPenalty: number) {
    this.#numBeams = numBeams;
    this.#lengthPenalty = lengthPenalty;
  }

  get size(): number {
    return this.#hypotheses.length;
  }

  /** The lowest kept score (-Infinity while fewer than numBeams are kept). */
  get worstScore(): number {
    return this.#hypotheses.length < this.#numBeams ? -Infinity : this.#hypotheses[this.#hypotheses.length - 1].score;
  }

  /** The length-penalised score of a hypothesis of `length` generated tokens. */
  score(sumLogProbs: number, length: number): number {
    return sumLogProbs / length ** this.#lengthPenalty;
  }

  /** Adds a hypothesis when there is room or it beats the worst kept one. */
  add(tokens: number[], sumLogProbs: number): void {
    if (!(sumLogProbs > -Infinity) || tokens.length === 0) return;
    const score = this.score(sumLogProbs, tokens.length);
    if (this.#hypotheses.length >= this.#numBeams && score <= this.worstScore) return;
    // Kept sorted best first; a later equal score goes after the earlier ones.
    let at = this.#hypotheses.length;
    while (at > 0 && this.#hypotheses[at - 1].score < score) at--;
    this.#hypotheses.splice(at, 0, { tokens, sumLogProbs, score });
    if (this.#hypotheses.length > this.#numBeams) this.#hypotheses.pop();
  }

  /**
   * Whether no running beam can still produce a hypothesis that is kept. `bestRunningSum` is the
   * largest sum of log-probabilities among the running beams, `length` their generated length.
   * `earlyStopping: true` stops as soon as numBeams hypotheses are finished; `false` stops only
   * when the best running beam provably cannot beat the worst finished one (log-probabilities are
   * <= 0, so with lengthPenalty > 0 the best it can reach is `sum / maxLength ** lengthPenalty`,
   * and with lengthPenalty <= 0 it is `sum / length ** lengthPenalty`; HF's `early_stopping="never"`).
   */
  isDone(bestRunningSum: number, length: number, maxLength: number, earlyStopping: boolean): boolean {
    if (!(bestRunningSum > -Infinity)) return true; // no running beam left
    if (this.#hypotheses.length < this.#numBeams) return false;
    if (earlyStopping) return true;
    const bound = this.score(bestRunningSum, this.#lengthPenalty > 0 ? maxLength : length);
    return this.worstScore >= bound;
  }

  /** The kept hypotheses, best first. */
  best(): BeamHypothesis[] {
    return [...this.#hypotheses];
  }
}

/** One beam: a row of the expanded batch. */
export interface Beam {
  /** Generated tokens so far (no BOS). */
  tokens: number[];
  /** Sum of log-probabilities; -Infinity for an unused (dead) beam. */
  sumLogProbs: number;
}

/** The beams chosen for the next step of one source. */
export interface BeamStep {
  /** For each new beam, the index (within this source's beams) of the beam it extends. */
  sources: number[];
  /** For each new beam, the token it appends (the filler for dead beams). */
  tokens: number[];
  /** The new beams. */
  beams: Beam[];
}

/** The `count` largest finite entries of `values`, as indices, best first (ties: lower index first). */
export function topIndices(values: ArrayLike<number>, count: number): number[] {
  const best: number[] = [];
  for (let i = 0; i < values.length; i++) {
    const value = values[i];
    if (!(value > -Infinity)) continue;
    if (best.length === count && value <= values[best[count - 1]]) continue;
    let at = best.length;
    while (at > 0 && values[best[at - 1]] < value) at--;
    best.splice(at, 0, i);
    if (best.length > count) best.pop();
  }
  return best;
}

/**
 * One beam-search step for one source (HF `BeamSearchScorer.process`): ranks the top `2 *
 * numBeams` extensions of the live beams by summed log-probability; an extension ending in EOS
 * and ranked within the first `numBeams` becomes a finished hypothesis; the best non-EOS
 * extensions become the next beams. When fewer than `numBeams` extensions exist, the rest are dead
 * beams (score -Infinity) fed `filler`.
 */
export function beamStep(
  beams: readonly Beam[],
  logProbs: readonly Float64Array[],
  hypotheses: BeamHypotheses,
  { eosTokenId, filler }: { eosTokenId: number | null; filler: number },
): BeamStep {
  const numBeams = beams.length;
  const wanted = 2 * numBeams;
  const candidates: { beam: number; token: number; sum: number }[] = [];
  beams.forEach((beam, b) => {
    if (!(beam.sumLogProbs > -Infinity)) return;
    const row = logProbs[b];
    for (const token of topIndices(row, wanted)) candidates.push({ beam: b, token, sum: beam.sumLogProbs + row[token] });
  });
  // Best first; ties by beam, then token, so the order is deterministic.
  candidates.sort((x, y) => y.sum - x.sum || x.beam - y.beam || x.token - y.token);
  const step: BeamStep = { sources: [], tokens: [], beams: [] };
  for (const [rank, candidate] of candidates.slice(0, wanted).entries()) {
    const tokens = [...beams[candidate.beam].tokens, candidate.token];
    if (candidate.token === eosTokenId) {
      if (rank < numBeams) hypotheses.add(tokens, candidate.sum);
      continue;
    }
    step.sources.push(candidate.beam);
    step.tokens.push(candidate.token);
    step.beams.push({ tokens, sumLogProbs: candidate.sum });
    if (step.beams.length === numBeams) break;
  }
  while (step.beams.length < numBeams) {
    const b = step.beams.length;
    step.sources.push(b);
    step.tokens.push(filler);
    step.beams.push({ tokens: [...beams[b].tokens, filler], sumLogProbs: -Infinity });
  }
  return step;
}
