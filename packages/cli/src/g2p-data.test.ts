import { PHONEMES, cleanPronunciation, loadG2PEntries, loadG2PSplits, splitOf } from './g2p-data';

describe('G2P data rules', () => {
  const entries = loadG2PEntries();
  const splits = loadG2PSplits(entries);

  it('keeps words of lowercase letters and apostrophes, grouping alternates', () => {
    expect(entries).toHaveLength(124_920);
    expect(entries.every((e) => /^[a-z']+$/.test(e.word))).toBe(true);
    const a = entries.find((e) => e.word === 'a')!;
    expect(a.pronunciations).toEqual([['AH'], ['EY']]);
    expect(entries.find((e) => e.word === "'bout")!.pronunciations).toEqual([['B', 'AW', 'T']]);
    expect(entries.some((e) => e.word === 'a.')).toBe(false);
  });

  it('drops comments and stress digits, leaving the 39 phonemes', () => {
    expect(cleanPronunciation('AE1 L B ER0 G # place, dutch')).toEqual(['AE', 'L', 'B', 'ER', 'G']);
    const seen = new Set(entries.flatMap((e) => e.pronunciations.flat()));
    expect([...seen].sort()).toEqual([...PHONEMES].sort());
    expect(entries.find((e) => e.word === 'aalburg')!.pronunciations).toEqual([['AE', 'L', 'B', 'ER', 'G']]);
  });

  it('splits by the md5 of the word: 112,444 / 6,302 / 6,174', () => {
    expect([splits.train.length, splits.dev.length, splits.test.length]).toEqual([112_444, 6_302, 6_174]);
    // md5("a") = 0cc175b9...: 0x0cc175b9 % 100 = 77 -> train.
    expect(parseInt('0cc175b9', 16) % 100).toBe(77);
    expect(splitOf('a')).toBe('train');
    for (const [name, list] of Object.entries(splits)) expect(list.every((e) => splitOf(e.word) === name)).toBe(true);
  });
});
