/**
 * The pretrained English model: loading it (from the package in Node, from a URL anywhere) and
 * pronouncing words with it.
 */
import { BaseModel, MieConfigError, checkOptions, describeValue, errorMessage } from '@mie/core';
import { G2PModel } from './g2p-model';
import { bundledModelSource } from './model-location';

/** Options of {@link loadG2P}. */
export interface LoadG2POptions {
  /**
   * A folder URL (ending in `/`) or path holding `config.json` and `model.safetensors`. Default:
   * the model shipped in this package (Node); a page must pass where it serves those files.
   */
  url?: string;
}

/** Options of {@link pronounce}. */
export interface PronounceOptions extends LoadG2POptions {
  /** Beam search with this many beams (1 to 64); 1, the default, is greedy decoding. */
  beams?: number;
  /** A model from {@link loadG2P} to use (and keep); by default one is loaded and disposed per call. */
  model?: G2PModel;
}

/** Most beams {@link pronounce} takes: accuracy stops improving at about 5. */
export const MAX_BEAMS = 64;

/** Loads the pretrained model (yours to dispose). */
export async function loadG2P(options: LoadG2POptions = {}): Promise<G2PModel> {
  const { url } = checkOptions('loadG2P', options, ['url']);
  if (url !== undefined && (typeof url !== 'string' || url === '')) throw new MieConfigError(errorMessage('loadG2P', 'url', 'must be a folder URL or path', url));
  const model = await BaseModel.load(url ?? bundledModelSource());
  if (!(model instanceof G2PModel)) {
    const name = model.constructor.name;
    model.dispose();
    throw new MieConfigError(`loadG2P: ${url ?? 'the bundled model'} holds a ${name}, not a G2PModel.`);
  }
  model.eval();
  return model;
}

/**
 * The ARPAbet phonemes (39 symbols, no stress) of each word, as the pretrained model predicts
 * them: `await pronounce(['hello', 'world'])` gives `[['HH', 'EH', 'L', 'OW'], ['W', 'ER', 'L', 'D']]`.
 * Words are lowercased; letters, and the apostrophe, only (anything else is a `MieConfigError`
 * naming the word and the character).
 */
export async function pronounce(words: string | readonly string[], options: PronounceOptions = {}): Promise<string[][]> {
  const { beams = 1, model: given, url } = checkOptions('pronounce', options, ['beams', 'model', 'url']);
  const list = typeof words === 'string' ? [words] : words;
  if (!Array.isArray(list) || list.some((word) => typeof word !== 'string' || word.length === 0)) {
    throw new MieConfigError(errorMessage('pronounce', 'words', 'must be a non-empty string or an array of them', words));
  }
  if (!Number.isInteger(beams) || beams < 1 || beams > MAX_BEAMS) {
    throw new MieConfigError(errorMessage('pronounce', 'beams', `must be an integer in [1, ${MAX_BEAMS}]`, beams));
  }
  if (given !== undefined && !(given instanceof G2PModel)) throw new MieConfigError(`pronounce: option "model" must be a G2PModel from loadG2P(). Received: ${describeValue(given)}.`);
  const normalised = list.map((word) => word.toLowerCase());
  const model = given ?? (await loadG2P(url === undefined ? {} : { url }));
  try {
    for (const word of normalised) model.encodeWord(word); // an unknown character: a clear error before any work
    return await model.pronounce(normalised, { numBeams: beams });
  } finally {
    if (given === undefined) model.dispose();
  }
}
