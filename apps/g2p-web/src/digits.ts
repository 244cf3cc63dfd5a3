/**
 * The digits panel: the user draws up to five digits on a canvas, one per box, and the model of
 * `mie train digits` (an ImageToSequenceTransformer, shipped in models/digits) reads them on the
 * page's backend, with each emitted digit's cross-attention drawn over what it read.
 *
 * The drawing is brought to MNIST's form first (LeCun et al. 1998): each box's ink is scaled to
 * fit 20 x 20 pixels, keeping its aspect, and centred by its centre of mass in a 28 x 28 cell;
 * the non-empty boxes go left to right into a 28 x 140 strip, as the training strips are.
 */
import { BaseModel, tf } from '@mie/core';
import { renderImageAttention } from '@mie/plot';
import type { ImageToSequenceTransformer } from '@mie/transformer';

/** Token ids of the model: PAD 0, BOS 1, EOS 2, digit d = 3 + d. */
const BOS = 1;
const EOS = 2;
const DIGIT_OFFSET = 3;
const CELL = 28;
const SLOTS = 5;
/** Screen pixels per strip pixel. */
const SCALE = 4;

/** What reading a strip gives. */
export interface Reading {
  digits: number[];
  /** One map over the patch grid per emitted digit, and one for the end. */
  attention: number[][];
  /** The 28 x 140 strip the model read, in [0, 1]. */
  pixels: Float32Array;
  milliseconds: number;
}

/** The model's digits and cross-attention for a 28 x 140 strip (`pixels` in [0, 1], row-major). */
export async function readStrip(model: ImageToSequenceTransformer, pixels: Float32Array): Promise<Reading> {
  const started = performance.now();
  const images = tf.tensor4d(pixels, [1, CELL, CELL * SLOTS, 1]);
  try {
    const { sequences } = await model.generate(images, { maxNewTokens: SLOTS + 1, bosTokenId: BOS, eosTokenId: EOS });
    const digits: number[] = [];
    for (const token of sequences[0]) {
      if (token === EOS) break;
      if (token >= DIGIT_OFFSET) digits.push(token - DIGIT_OFFSET);
    }
    const milliseconds = performance.now() - started;
    const maps = tf.tidy(() => {
      const tgt = tf.tensor2d([[BOS, ...digits.map((d) => d + DIGIT_OFFSET)]], [1, digits.length + 1], 'int32');
      const out = model.forward(images, tgt, { returnAttention: true });
      const mean = tf.mean(tf.stack(out.crossAttention), [0, 2]); // [layers, 1, heads, t, s] -> [1, t, s]
      return tf.reshape(mean, mean.shape.slice(1)); // -> [t, s]
    });
    const attention = (await maps.array()) as number[][];
    maps.dispose();
    return { digits, attention, pixels, milliseconds };
  } finally {
    images.dispose();
  }
}

/** One box of the drawing in MNIST's form: `[28 * 28]` in [0, 1], or null when the box is empty. */
function normalizeBox(ink: HTMLCanvasElement, box: number): Float32Array | null {
  const size = CELL * SCALE;
  const data = ink.getContext('2d')!.getImageData(box * size, 0, size, size).data;
  let [left, top, right, bottom] = [size, size, -1, -1];
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      if (data[(y * size + x) * 4] > 30) {
        left = Math.min(left, x);
        right = Math.max(right, x);
        top = Math.min(top, y);
        bottom = Math.max(bottom, y);
      }
    }
  }
  if (right < 0) return null;
  // Fit the ink's bounding box into 20 x 20 (aspect kept), on a 28 x 28 cell.
  const width = right - left + 1;
  const height = bottom - top + 1;
  const factor = 20 / Math.max(width, height);
  const cell = document.createElement('canvas');
  cell.width = CELL;
  cell.height = CELL;
  const context = cell.getContext('2d', { willReadFrequently: true })!;
  context.fillStyle = '#000';
  context.fillRect(0, 0, CELL, CELL);
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  const w = width * factor;
  const h = height * factor;
  context.drawImage(ink, box * size + left, top, width, height, (CELL - w) / 2, (CELL - h) / 2, w, h);
  const values = new Float32Array(CELL * CELL);
  const cellData = context.getImageData(0, 0, CELL, CELL).data;
  let mass = 0;
  let cx = 0;
  let cy = 0;
  for (let i = 0; i < values.length; i++) {
    values[i] = cellData[i * 4] / 255;
    mass += values[i];
    cx += values[i] * (i % CELL);
    cy += values[i] * Math.floor(i / CELL);
  }
  // Centre of mass to the cell's centre, by whole pixels (MNIST's own step).
  const dx = Math.round(13.5 - cx / mass);
  const dy = Math.round(13.5 - cy / mass);
  const shifted = new Float32Array(CELL * CELL);
  for (let y = 0; y < CELL; y++) {
    for (let x = 0; x < CELL; x++) {
      const sx = x - dx;
      const sy = y - dy;
      if (sx >= 0 && sx < CELL && sy >= 0 && sy < CELL) shifted[y * CELL + x] = values[sy * CELL + sx];
    }
  }
  return shifted;
}

/** The drawing as a 28 x 140 strip: the non-empty boxes, normalised, from the left. */
export function stripFromDrawing(ink: HTMLCanvasElement): { pixels: Float32Array; digits: number } {
  const width = CELL * SLOTS;
  const pixels = new Float32Array(CELL * width);
  let slot = 0;
  for (let box = 0; box < SLOTS; box++) {
    const cell = normalizeBox(ink, box);
    if (!cell) continue;
    for (let y = 0; y < CELL; y++) for (let x = 0; x < CELL; x++) pixels[y * width + slot * CELL + x] = cell[y * CELL + x];
    slot++;
  }
  return { pixels, digits: slot };
}

/**
 * Wires the panel: `canvas` (drawn on with a pointer), the read and clear buttons, the result,
 * the timing and the attention picture. Loads the model from `url` and resolves when it is ready.
 */
export async function setUpDigits(elements: {
  canvas: HTMLCanvasElement;
  read: HTMLButtonElement;
  clear: HTMLButtonElement;
  result: HTMLElement;
  time: HTMLElement;
  attention: HTMLImageElement;
  error: HTMLElement;
  url: string;
}): Promise<{ read(pixels: Float32Array): Promise<Reading> }> {
  const { canvas, read, clear, result, time, attention, error, url } = elements;
  const size = CELL * SCALE;
  canvas.width = size * SLOTS;
  canvas.height = size;
  const ink = document.createElement('canvas');
  ink.width = canvas.width;
  ink.height = canvas.height;
  const inkContext = ink.getContext('2d', { willReadFrequently: true })!;
  const view = canvas.getContext('2d')!;
  const redraw = () => {
    view.drawImage(ink, 0, 0);
    view.strokeStyle = '#555';
    view.lineWidth = 1;
    for (let box = 1; box < SLOTS; box++) {
      view.beginPath();
      view.moveTo(box * size + 0.5, 0);
      view.lineTo(box * size + 0.5, size);
      view.stroke();
    }
  };
  const wipe = () => {
    inkContext.fillStyle = '#000';
    inkContext.fillRect(0, 0, ink.width, ink.height);
    redraw();
  };
  wipe();
  inkContext.strokeStyle = '#fff';
  inkContext.lineWidth = 13;
  inkContext.lineCap = 'round';
  inkContext.lineJoin = 'round';
  let last: [number, number] | null = null;
  const point = (event: PointerEvent): [number, number] => {
    const rect = canvas.getBoundingClientRect();
    return [((event.clientX - rect.left) * canvas.width) / rect.width, ((event.clientY - rect.top) * canvas.height) / rect.height];
  };
  canvas.addEventListener('pointerdown', (event) => {
    canvas.setPointerCapture(event.pointerId);
    last = point(event);
    inkContext.beginPath();
    inkContext.arc(last[0], last[1], inkContext.lineWidth / 2, 0, 2 * Math.PI);
    inkContext.fillStyle = '#fff';
    inkContext.fill();
    redraw();
  });
  canvas.addEventListener('pointermove', (event) => {
    if (!last) return;
    const next = point(event);
    inkContext.beginPath();
    inkContext.moveTo(last[0], last[1]);
    inkContext.lineTo(next[0], next[1]);
    inkContext.stroke();
    last = next;
    redraw();
  });
  const lift = () => {
    last = null;
  };
  canvas.addEventListener('pointerup', lift);
  canvas.addEventListener('pointercancel', lift);

  const model = (await BaseModel.load(url)) as ImageToSequenceTransformer;
  model.eval();
  const patch = model.config.patchSize;
  const show = async (reading: Reading) => {
    const text = reading.digits.join('');
    result.textContent = text;
    time.textContent = `${reading.milliseconds.toFixed(0)} ms`;
    const png = await renderImageAttention({
      pixels: reading.pixels, imageSize: [CELL, CELL * SLOTS], grid: [CELL / patch, (CELL * SLOTS) / patch],
      maps: reading.attention.map((row) => row.slice(model.config.classToken ? 1 : 0)), labels: [...reading.digits.map(String), 'end'],
      title: `read as ${text || '(nothing)'}: where the model looks for each digit`,
    });
    if (attention.src.startsWith('blob:')) URL.revokeObjectURL(attention.src);
    attention.src = URL.createObjectURL(new Blob([png as BlobPart], { type: 'image/png' }));
    attention.dataset.panels = String(reading.attention.length);
    // Last: data-digits marks a reading whose result, time and attention are all shown.
    result.dataset.digits = text;
  };
  const readPixels = async (pixels: Float32Array) => {
    error.textContent = '';
    // The result's data-digits marks a finished reading: none while this one runs.
    delete result.dataset.digits;
    const reading = await readStrip(model, pixels);
    await show(reading);
    return reading;
  };
  read.addEventListener('click', () => {
    const { pixels, digits } = stripFromDrawing(ink);
    if (digits === 0) {
      error.textContent = 'Draw a digit first (one per box).';
      return;
    }
    readPixels(pixels).catch((e: Error) => {
      error.textContent = e.message;
    });
  });
  clear.addEventListener('click', () => {
    wipe();
    result.textContent = '';
    delete result.dataset.digits;
  });
  read.disabled = false;
  clear.disabled = false;
  return { read: readPixels };
}
