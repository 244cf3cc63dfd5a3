/**
 * The grapheme-to-phoneme data set: the CMU Pronouncing Dictionary (npm
 * `cmu-pronouncing-dictionary`, ~134k entries), under these rules:
 *
 * - words of lowercase letters and apostrophes only (entries such as `a.` or `3d` are dropped);
 * - anything from `#` on in a pronunciation is a comment and dropped (22 entries carry one);
 * - stress digits are removed, leaving the 39 ARPAbet phonemes;
 * - alternates (`word(2)`, `word(3)`) are grouped under their word;
 * - the split is by word, so all pronunciations of a word fall in one split: the first 8 hex
 *   digits of md5(word) read as an integer, mod 100: 0-89 train, 90-94 dev, 95-99 test
 *   (124,920 words: 112,444 / 6,302 / 6,174).
 */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { GRAPHEMES, PHONEMES } from '@mie/g2p-en';

export { GRAPHEMES, PHONEMES };

/** One word with all its pronunciations (each a list of phonemes). */
export interface G2PEntry {
  word: string;
  pronunciations: string[][];
}

export type SplitName = 'train' | 'dev' | 'test';

/** The split a word belongs to (md5 rule above). */
export function splitOf(word: string): SplitName {
  const bucket = parseInt(createHash('md5').update(word).digest('hex').slice(0, 8), 16) % 100;
  return bucket < 90 ? 'train' : bucket < 95 ? 'dev' : 'test';
}

/** Cleans one pronunciation: comment dropped, stress removed. */
export function cleanPronunciation(raw: string): string[] {
  return raw
    .split('#')[0]
    .trim()
    .split(/\s+/)
    .filter(Boolean)
    .map((phoneme) => phoneme.replace(/[0-9]/g, ''));
}

/**
 * Reads the dictionary shipped by `cmu-pronouncing-dictionary`. The package is an ES module
 * holding one object literal of JSON strings; it is read as data (parsed as JSON), never executed.
 */
export function readCmuDictionary(): Record<string, string> {
  const file = require.resolve('cmu-pronouncing-dictionary/index.js');
  const text = fs.readFileSync(file, 'utf8');
  const start = text.indexOf('= {');
  if (start < 0) throw new Error(`${file}: unexpected format (no "= {")`);
  return JSON.parse(text.slice(start + 2)) as Record<string, string>;
}

/** Words (sorted) with their pronunciations, by the rules above. */
export function loadG2PEntries(dictionary: Record<string, string> = readCmuDictionary()): G2PEntry[] {
  const byWord = new Map<string, string[][]>();
  for (const [key, raw] of Object.entries(dictionary)) {
    const word = key.replace(/\(\d+\)$/, '');
    if (!/^[a-z']+$/.test(word)) continue;
    const pronunciation = cleanPronunciation(raw);
    if (pronunciation.length === 0) continue;
    const list = byWord.get(word) ?? [];
    if (!list.some((p) => p.join(' ') === pronunciation.join(' '))) list.push(pronunciation);
    byWord.set(word, list);
  }
  return [...byWord.keys()].sort().map((word) => ({ word, pronunciations: byWord.get(word)! }));
}

/** The train, dev and test splits. */
export function loadG2PSplits(entries: G2PEntry[] = loadG2PEntries()): Record<SplitName, G2PEntry[]> {
  const splits: Record<SplitName, G2PEntry[]> = { train: [], dev: [], test: [] };
  for (const entry of entries) splits[splitOf(entry.word)].push(entry);
  return splits;
}
