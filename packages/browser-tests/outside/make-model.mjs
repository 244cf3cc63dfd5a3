// node make-model.mjs <dir>: a small seeded encoder-decoder checkpoint (config.json +
// model.safetensors) for the checks to load by URL.
import { setBackend, setSeed } from '@mie/core';
import { EncoderDecoderTransformer } from '@mie/transformer';

await setBackend('cpu');
setSeed(2024);
const model = new EncoderDecoderTransformer({
  srcVocabSize: 16, tgtVocabSize: 16, dModel: 32, numHeads: 4, numEncoderLayers: 2, numDecoderLayers: 2,
  dFf: 64, dropout: 0.1, maxSeqLength: 32, padTokenId: 0,
});
await model.save(process.argv[2]);
model.dispose();
