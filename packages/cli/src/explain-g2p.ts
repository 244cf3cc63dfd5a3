/**
 * `mie explain g2p WORD`: pictures of how a G2P model pronounces a word. The word is pronounced
 * greedily, then one teacher-forced forward pass over `<s>` and those phonemes runs with the
 * activation cache of @mie/insight; from it come every decoder layer x head cross-attention
 * pattern (letters on x, phonemes on y), every encoder layer x head self-attention pattern, and the
 * logit lens of the decoder (what each layer would predict at each position), drawn by @mie/plot.
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { MieConfigError, causeMessage, describeValue, ready, tf } from '@mie/core';
import { BOS, EOS, G2PModel, PAD } from '@mie/g2p-en';
import { attentionPatterns, logitLens, logitLensTable, runWithCache } from '@mie/insight';
import { renderAttentionGrid, renderAttentionGridSvg, renderLogitLens, renderLogitLensSvg } from '@mie/plot';
import { loadModelDirectory } from './model-directory';
import { writeRunFiles } from './run-directory';

const COMMAND = 'mie explain g2p';

/** The pictures `mie explain g2p` writes into `--out`, each as `.png` and `.svg`. */
export const EXPLAIN_PICTURES = ['cross-attention-grid', 'self-attention-grid', 'logit-lens'] as const;

/** Options of {@link explainG2P}. */
export interface ExplainG2POptions {
  /** Where the pictures go. Default `explain-WORD` (the word lowercased). */
  out?: string;
  /** Where the pronunciation and the written files are reported. Default console.log. */
  log?: (line: string) => void;
}

/** What {@link explainG2P} found and wrote. */
export interface ExplainG2PResult {
  /** The word as pronounced (trimmed, lowercased). */
  word: string;
  /** Its greedy pronunciation (ARPAbet). */
  pronunciation: string[];
  /** The files written, `.png` then `.svg` of each picture. */
  files: string[];
}

/** The word, trimmed and lowercased; an empty one is a `MieConfigError` naming the command. */
function checkWord(word: unknown): string {
  const trimmed = typeof word === 'string' ? word.trim() : '';
  if (trimmed === '') throw new MieConfigError(`${COMMAND}: WORD must hold at least one letter. Received: ${describeValue(word)}.`);
  return trimmed.toLowerCase();
}

/** Letters the model cannot spell are a `MieConfigError` naming the command and the characters. */
function checkSpelling(model: G2PModel, word: string): void {
  const known = new Set(model.config.graphemes);
  const unknown = [...new Set([...word].filter((c) => !known.has(c)))];
  if (unknown.length > 0) {
    throw new MieConfigError(
      `${COMMAND}: "${word}" holds characters the model cannot spell: ${unknown.map((c) => JSON.stringify(c)).join(', ')}. It knows: ${model.config.graphemes.join(' ')}`,
    );
  }
}

async function loadG2PModel(dir: string): Promise<G2PModel> {
  const model = await loadModelDirectory(dir, COMMAND);
  if (!(model instanceof G2PModel)) {
    model.dispose();
    throw new MieConfigError(`${COMMAND}: ${dir} holds a ${model.constructor.name}, not a G2P model (train one with "mie train g2p").`);
  }
  return model;
}

/**
 * `mie explain g2p --model DIR [--out DIR] WORD`: pronounces WORD and writes
 * `cross-attention-grid`, `self-attention-grid` and `logit-lens` as PNG and SVG into `out`, then
 * prints the pronunciation and the files (each written atomically: other files in `out` are left
 * alone, earlier pictures replaced). A bad word (empty, characters the model does not know), a
 * model directory that is not a G2P model, or an `out` that cannot be written is a `MieError`
 * naming the command.
 */
export async function explainG2P(dir: string, word: string, { out, log = console.log }: ExplainG2POptions = {}): Promise<ExplainG2PResult> {
  const checked = checkWord(word);
  const outDir = out ?? `explain-${checked}`;
  if (typeof outDir !== 'string' || outDir === '') throw new MieConfigError(`${COMMAND}: --out must be a directory path. Received: ${describeValue(outDir)}.`);
  await ready();
  const model = await loadG2PModel(dir);
  try {
    checkSpelling(model, checked);
    const maxLength = model.config.transformer.maxSeqLength ?? 5000;
    if (checked.length + 1 > maxLength) throw new MieConfigError(`${COMMAND}: "${checked.slice(0, 40)}" is longer than the model takes (${maxLength - 1} letters).`);
    const [pronunciation] = await model.pronounce([checked]);
    const pictures = await drawPictures(model, checked, pronunciation);
    try {
      await fsp.mkdir(outDir, { recursive: true });
    } catch (error) {
      throw new MieConfigError(`${COMMAND}: --out ${outDir} cannot be made a directory: ${causeMessage(error)}`, { cause: error });
    }
    // Each picture replaced whole or not at all, as a run's files are.
    const encoder = new TextEncoder();
    const named = EXPLAIN_PICTURES.flatMap((name): Array<[string, Uint8Array]> => [[`${name}.png`, pictures[name].png], [`${name}.svg`, encoder.encode(pictures[name].svg)]]);
    await writeRunFiles(COMMAND, outDir, named);
    const files = named.map(([name]) => path.join(outDir, name));
    log(`${checked}\t${pronunciation.join(' ')}`);
    for (const file of files) log(`wrote ${file}`);
    return { word: checked, pronunciation, files };
  } finally {
    model.dispose();
  }
}

/** Every picture as PNG bytes and SVG text, from one cached teacher-forced forward pass. */
async function drawPictures(model: G2PModel, word: string, pronunciation: string[]): Promise<Record<(typeof EXPLAIN_PICTURES)[number], { png: Uint8Array; svg: string }>> {
  const letters = [...word.split(''), '</s>'];
  const decoderInputs = ['<s>', ...pronunciation];
  const src = model.sourceBatch([word]);
  const tgtIn = tf.tensor2d([[BOS, ...model.encodePronunciation(pronunciation)]], [1, pronunciation.length + 1], 'int32');
  // The attention patterns, and the decoder's residual stream for the logit lens: nothing else is copied.
  const wanted = (name: string): boolean =>
    name.endsWith('.hookPattern') || (name.startsWith('transformer.decoder.') && (name.endsWith('.hookResidPre') || name.endsWith('.hookResidPost')));
  const { output, cache } = await runWithCache(model, () => model.forward(src, tgtIn), { names: wanted });
  try {
    const phonemeName = (id: number): string =>
      id === EOS ? '</s>' : id === BOS ? '<s>' : id === PAD ? '<pad>' : model.phonemeVocabulary.decode([id], { skipSpecial: false });
    const cross = attentionPatterns(model, cache, 'transformer.decoder.layers', 'crossAttn'); // [1, h, t, s] per layer
    const self = attentionPatterns(model, cache, 'transformer.encoder.layers', 'selfAttn'); // [1, h, s, s] per layer
    const lens = logitLens(model, cache, { topK: 1, tokens: phonemeName });
    const table = logitLensTable(lens, decoderInputs);
    // The last decoder layer's stream is what the model outputs: say so in its row name.
    table.layers[table.layers.length - 1] += ' (output)';
    const crossOptions = {
      keyTokens: letters,
      queryTokens: decoderInputs,
      layerNames: cross.map((_, l) => `decoder ${l}`),
      title: `"${word}" -> ${pronunciation.join(' ')}: cross-attention (letters across, decoder inputs down)`,
      colorbarLabel: 'attention weight',
    };
    const selfOptions = {
      keyTokens: letters,
      queryTokens: letters,
      layerNames: self.map((_, l) => `encoder ${l}`),
      title: `"${word}": encoder self-attention (keys across, queries down)`,
    };
    const lensOptions = { title: `"${word}": logit lens (top phoneme each decoder layer predicts next)` };
    return {
      'cross-attention-grid': { png: await renderAttentionGrid(cross, crossOptions), svg: await renderAttentionGridSvg(cross, crossOptions) },
      'self-attention-grid': { png: await renderAttentionGrid(self, selfOptions), svg: await renderAttentionGridSvg(self, selfOptions) },
      'logit-lens': { png: await renderLogitLens(table, lensOptions), svg: await renderLogitLensSvg(table, lensOptions) },
    };
  } finally {
    cache.dispose();
    tf.dispose([src, tgtIn, output]);
  }
}
