/** @mie/cli: the `mie` command line, the G2P task, the character language model and the digit-strip reader it trains. */
export { main, run, MieUsageError, type ConsoleLike } from './bin';
export { MAX_MINUTES, checkRunOptions, openRun, fitAndKeepBest, deviceLine, type RunOptions, type OpenedRun, type KeptModel } from './training-run';
export { trainG2P, evaluateG2P, architectureFor, effectiveMinutes, type TrainG2POptions, type G2PMetrics, type DecodeReport } from './train-g2p';
export { evalG2P, pronounce, inspect, trainIris, type TrainIrisOptions } from './commands';
export { trainLM, scoreWindows, LM_ARCHITECTURE, type TrainLMOptions, type LMMetrics, type LMRunConfig, type SplitReport } from './train-lm';
export { CharLanguageModel, type CharLanguageModelConfig, type CharTransformerOptions, type GenerateTextOptions } from './char-language-model';
export { generate, type GenerateCommandOptions } from './generate';
export {
  CharVocabulary,
  RandomWindows,
  brownCorpusDirectory,
  detokenize,
  lmSplitOf,
  loadBrownDocuments,
  loadLMSplits,
  ngramBaselines,
  readBrownText,
  scoringWindows,
  MIN_CHARACTER_COUNT,
  SPECIAL_TOKENS,
  UNK,
  type BitsPerCharacter,
  type LMDocument,
  type LMSplitName,
  type RandomWindowsOptions,
  type ScoringWindow,
  type WindowBatch,
} from './lm-data';
export { trainDigits, readStrips, stripScores, digitsModel, DIGITS_ARCHITECTURE, type TrainDigitsOptions, type DigitsMetrics, type DigitsRunConfig, type DigitsArchitecture, type StripReport, type ReadStripsOptions } from './train-digits';
export {
  MNIST_FILES,
  TrainingStrips,
  composeStrips,
  loadMnist,
  mnistDirectory,
  renderStrips,
  stripImages,
  testStrips,
  validationStrips,
  tokensToDigits,
  DIGITS_VOCAB_SIZE,
  DIGIT_OFFSET,
  STRIP_HEIGHT,
  STRIP_WIDTH,
  type DigitBatch,
  type DigitSet,
  type Strip,
  type TrainingStripsOptions,
} from './digits-data';
export { prepareRunDirectory, runEntries, writeRunFiles, G2P_RUN, IRIS_RUN, LM_RUN, DIGITS_RUN, type RunLayout, type PrepareRunOptions } from './run-directory';
export { checkModelDirectory, loadModelDirectory } from './model-directory';
export { G2PModel, PAD, BOS, EOS, type G2PModelConfig } from '@mie/g2p-en';
export { loadG2PEntries, loadG2PSplits, readCmuDictionary, cleanPronunciation, splitOf, PHONEMES, GRAPHEMES, type G2PEntry, type SplitName } from './g2p-data';
export { editDistance, g2pErrorRates } from './metrics';
