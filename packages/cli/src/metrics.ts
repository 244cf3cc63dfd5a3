/**
 * G2P metrics. Word error rate (WER): a word is right when the whole predicted phoneme sequence
 * equals one of its dictionary pronunciations. Phoneme error rate (PER): the edit distance to the
 * closest pronunciation, summed over words, divided by the summed lengths of those pronunciations.
 */

/** Levenshtein distance between two token sequences (unit costs). */
export function editDistance(a: readonly string[], b: readonly string[]): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length];
}

/** WER and PER of `predictions` against each word's `references` (all pronunciations). */
export function g2pErrorRates(predictions: readonly string[][], references: readonly string[][][]): { wer: number; per: number; words: number } {
  if (predictions.length !== references.length) throw new Error(`g2pErrorRates: ${predictions.length} predictions for ${references.length} words`);
  let wrongWords = 0;
  let edits = 0;
  let length = 0;
  predictions.forEach((prediction, i) => {
    let best = Infinity;
    let bestLength = 0;
    for (const reference of references[i]) {
      const distance = editDistance(prediction, reference);
      if (distance < best || (distance === best && reference.length > bestLength)) {
        best = distance;
        bestLength = reference.length;
      }
    }
    if (best > 0) wrongWords++;
    edits += best;
    length += bestLength;
  });
  return { wer: predictions.length ? wrongWords / predictions.length : 0, per: length ? edits / length : 0, words: predictions.length };
}
