/** The symbols of the English G2P model: what a word may contain, and what it is spelt in. */

/** The 39 ARPAbet phonemes, without stress. */
export const PHONEMES = [
  'AA', 'AE', 'AH', 'AO', 'AW', 'AY', 'B', 'CH', 'D', 'DH', 'EH', 'ER', 'EY', 'F', 'G', 'HH', 'IH', 'IY', 'JH', 'K',
  'L', 'M', 'N', 'NG', 'OW', 'OY', 'P', 'R', 'S', 'SH', 'T', 'TH', 'UH', 'UW', 'V', 'W', 'Y', 'Z', 'ZH',
] as const;

/** The letters a word may contain. */
export const GRAPHEMES = "abcdefghijklmnopqrstuvwxyz'".split('');
