const { ready, tf, setSeed } = require('@mie/core');
const { EncoderDecoderTransformer } = require('@mie/transformer');
const { crossEntropyLoss, AdamW, valueAndGradients } = require('@mie/training');
(async () => {
  const dev = await ready(); console.log(dev.matmul, dev.blasLibrary);
  setSeed(0);
  for (const [d, L, ff, B] of [[128, 3, 512, 128], [128, 3, 512, 64], [128, 2, 512, 128]]) {
    const m = new EncoderDecoderTransformer({ srcVocabSize: 31, tgtVocabSize: 43, dModel: d, numHeads: 4, numEncoderLayers: L, numDecoderLayers: L, dFf: ff, dropout: 0.1, padTokenId: 0, maxSeqLength: 64 });
    const src = tf.cast(tf.floor(tf.randomUniform([B, 11], 4, 31)), 'int32'), tin = tf.cast(tf.floor(tf.randomUniform([B, 10], 4, 43)), 'int32');
    const opt = new AdamW(m, { lr: 1e-3 });
    const step = () => { const { value, grads } = valueAndGradients(m, () => crossEntropyLoss(m.forward(src, tin), tin, { ignoreIndex: 0, labelSmoothing: 0.1 })); opt.step(grads); value.dataSync(); tf.dispose([value, ...Object.values(grads)]); };
    step(); step();
    const t = performance.now(); for (let i = 0; i < 10; i++) step(); const ms = (performance.now() - t) / 10;
    console.log(`d=${d} L=${L} ff=${ff} B=${B} params=${m.countParameters()} step=${ms.toFixed(1)}ms words/s=${(B*1000/ms).toFixed(0)}`);
    m.dispose(); opt.dispose(); tf.dispose([src, tin]);
  }
})();
