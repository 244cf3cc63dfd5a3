/** @mie/cli: the `mie` command line and the G2P task it trains. */
export { main } from './bin';
export { trainG2P, evaluateG2P, architectureFor, effectiveMinutes, type TrainG2POptions, type G2PMetrics, type DecodeReport } from './train-g2p';
export { evalG2P, pronounce, inspect, trainIris } from './commands';
export { G2PModel, PAD, BOS, EOS, type G2PModelConfig } from './g2p-model';
export { loadG2PEntries, loadG2PSplits, readCmuDictionary, cleanPronunciation, splitOf, PHONEMES, GRAPHEMES, type G2PEntry, type SplitName } from './g2p-data';
export { editDistance, g2pErrorRates } from './metrics';
