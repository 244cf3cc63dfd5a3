/**
 * @mie/g2p-en: a pretrained English grapheme-to-phoneme transformer (letters to ARPAbet),
 * trained by `mie train g2p` on the CMU Pronouncing Dictionary, and the model class it is.
 */
export { G2PModel, PAD, BOS, EOS, type G2PModelConfig } from './g2p-model';
export { GRAPHEMES, PHONEMES } from './vocabulary';
export { loadG2P, pronounce, MAX_BEAMS, type LoadG2POptions, type PronounceOptions } from './pretrained';
export { bundledModelSource } from './model-location';
