import { setBackend, tf } from '@mie/core';
import { PositionalEncoding, RelativePositionBias, RotaryPositionEncoding } from '@mie/positional';

await setBackend('cpu');
const positional = new PositionalEncoding({ dModel: 64, maxSeqLength: 512 }).eval();
const x = tf.randomNormal([2, 10, 64]); // [batch, seq, dModel] token embeddings
console.log(positional.forward(x).shape); // [2, 10, 64]: x + PE[0..9] (dropout only in training)
const next = positional.forward(tf.randomNormal([2, 1, 64]), { offset: 10 }); // the 11th token alone

const rotary = new RotaryPositionEncoding({ headDim: 16 }); // rotate-half pairs (i, i + 8), as LLaMA
const q = tf.randomNormal([2, 10, 4, 16]); // [batch, seq, heads, headDim]
const k = tf.randomNormal([2, 10, 1, 16]); // one key head (grouped-query attention)
const [qRotated, kRotated] = rotary.forward(q, k);
console.log(qRotated.shape, kRotated.shape, next.shape); // [2, 10, 4, 16] [2, 10, 1, 16] [2, 1, 64]

// A model trained on 2048 positions, used on 8192 (YaRN), and T5's relative position bias.
const scaling = { type: 'yarn', factor: 4, originalMaxSeqLength: 2048 } as const;
const long = new RotaryPositionEncoding({ headDim: 16, maxSeqLength: 8192, scaling });
const t5 = new RelativePositionBias({ numHeads: 4 }); // 32 buckets up to distance 128
console.log(long.rotate(q, { offset: 5000 }).shape, t5.forward(10, 10).shape); // [2, 10, 4, 16] [1, 4, 10, 10]

const heatmap = await positional.encodingHeatmap({ maxPositions: 8 }); // what visualizeEncodings() draws
console.log(heatmap.values.length, heatmap.values[0].length); // 8 64
