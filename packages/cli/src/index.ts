/** @mie/cli: the `mie` command line and the G2P task it trains. */
export { main, run, MieUsageError, type ConsoleLike } from './bin';
export { trainG2P, evaluateG2P, architectureFor, effectiveMinutes, MAX_MINUTES, type TrainG2POptions, type G2PMetrics, type DecodeReport } from './train-g2p';
export { evalG2P, pronounce, inspect, trainIris, type TrainIrisOptions } from './commands';
export { prepareRunDirectory, runEntries, G2P_RUN, IRIS_RUN, type RunLayout, type PrepareRunOptions } from './run-directory';
export { checkModelDirectory, loadModelDirectory } from './model-directory';
export { G2PModel, PAD, BOS, EOS, type G2PModelConfig } from '@mie/g2p-en';
export { loadG2PEntries, loadG2PSplits, readCmuDictionary, cleanPronunciation, splitOf, PHONEMES, GRAPHEMES, type G2PEntry, type SplitName } from './g2p-data';
export { editDistance, g2pErrorRates } from './metrics';
