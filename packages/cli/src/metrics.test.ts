import { editDistance, g2pErrorRates } from './metrics';

describe('G2P metrics', () => {
  it('edit distance counts insertions, deletions and substitutions', () => {
    expect(editDistance([], [])).toBe(0);
    expect(editDistance(['K', 'AE', 'T'], ['K', 'AE', 'T'])).toBe(0);
    expect(editDistance(['K', 'AE', 'T'], ['K', 'AH', 'T'])).toBe(1);
    expect(editDistance(['K', 'AE', 'T'], ['AE', 'T'])).toBe(1);
    expect(editDistance(['K', 'AE'], ['K', 'AE', 'T', 'S'])).toBe(2);
    expect(editDistance(['A', 'B', 'C'], ['C', 'B', 'A'])).toBe(2);
  });

  it('a word is right when it matches any pronunciation; PER uses the closest one', () => {
    const references = [
      [['T', 'AH', 'M', 'EY', 'T', 'OW'], ['T', 'AH', 'M', 'AA', 'T', 'OW']],
      [['K', 'AE', 'T']],
      [['D', 'AO', 'G']],
    ];
    const predictions = [['T', 'AH', 'M', 'AA', 'T', 'OW'], ['K', 'AE', 'D'], ['D', 'AO', 'G', 'Z']];
    const { wer, per, words } = g2pErrorRates(predictions, references);
    expect(words).toBe(3);
    expect(wer).toBeCloseTo(2 / 3, 12);
    expect(per).toBeCloseTo((0 + 1 + 1) / (6 + 3 + 3), 12);
  });
});
