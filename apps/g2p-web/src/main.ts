/**
 * The page: loads @mie/g2p-en's pretrained model on the chosen backend (`?backend=` or the
 * selector: auto, webgpu, webgl, wasm, cpu), pronounces the typed word greedily and with 5
 * beams, draws the cross-attention of its letters against its phonemes, reads handwritten digits
 * drawn on a canvas with the model of `mie train digits` (digits.ts), and trains a small
 * classifier in the page with a live loss curve.
 */
import '@tensorflow/tfjs-backend-webgl';
import '@tensorflow/tfjs-backend-webgpu';
import { BACKEND_CHOICES, getDevice, setBackend, setWasmPaths, type BackendChoice } from '@mie/core';
import { loadG2P, type G2PModel } from '@mie/g2p-en';
import { renderHeatmapSvg } from '@mie/plot';
import { setUpDigits } from './digits.js';
import { trainIrisInPage } from './iris.js';

const element = <T extends Element>(id: string): T => document.querySelector(`[data-testid="${id}"]`) as T;
const wordInput = element<HTMLInputElement>('word');
const backendSelect = element<HTMLSelectElement>('backend');
const show = (id: string, text: string) => {
  element<HTMLElement>(id).textContent = text;
};

const requested = new URLSearchParams(location.search).get('backend') ?? 'auto';
const choice: BackendChoice = (BACKEND_CHOICES as readonly string[]).includes(requested) ? (requested as BackendChoice) : 'auto';
backendSelect.value = choice;
backendSelect.addEventListener('change', () => {
  const url = new URL(location.href);
  url.searchParams.set('backend', backendSelect.value);
  location.assign(url.href); // one backend per page: a fresh page for another
});

let model: G2PModel | null = null;
let pending: Promise<void> = Promise.resolve();

async function pronounceWord(raw: string): Promise<void> {
  const word = raw.trim().toLowerCase();
  if (!model || word === '') return;
  show('error', '');
  try {
    model.encodeWord(word); // an unknown character: a clear message, nothing computed
    const started = performance.now();
    const [greedy] = await model.pronounce([word]);
    const greedyMs = performance.now() - started;
    show('phonemes', greedy.join(' '));
    const beamStarted = performance.now();
    const [beam] = await model.pronounce([word], { numBeams: 5 });
    show('beam', beam.join(' '));
    show('time', `${greedyMs.toFixed(0)} ms greedy, ${(performance.now() - beamStarted).toFixed(0)} ms with 5 beams`);
    const map = await model.attentionMap(word, greedy);
    element<HTMLElement>('attention').innerHTML = await renderHeatmapSvg({
      values: map.weights,
      xTickLabels: map.sourceTokens,
      yTickLabels: map.targetTokens,
      xLabel: 'letters',
      yLabel: 'phonemes',
      title: `"${word}": cross-attention (last layer, mean over heads)`,
      colorMap: 'sequential',
      vmin: 0,
      vmax: 1,
    });
    element<HTMLElement>('phonemes').dataset.word = word; // what the shown result is for
  } catch (error) {
    show('error', (error as Error).message);
  }
}

function submit(): void {
  const word = wordInput.value;
  pending = pending.then(() => pronounceWord(word)); // one at a time, in order
}

wordInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') submit();
});
wordInput.addEventListener('change', submit);

element<HTMLButtonElement>('train').addEventListener('click', () => {
  pending = pending.then(() => trainIrisInPage(element<SVGSVGElement>('loss-curve'), (text: string) => show('train-status', text)));
});

async function start(): Promise<void> {
  setWasmPaths(new URL('./', location.href).href); // the .wasm files sit next to the page
  try {
    await setBackend(choice);
  } catch (error) {
    show('error', `${(error as Error).message}; using auto`);
    await setBackend('auto');
  }
  model = await loadG2P({ url: new URL('./g2p-en/', location.href).href });
  const device = getDevice();
  show('device', `${device.backend} (${device.kind})${device.gpu?.description ? `: ${device.gpu.description}` : ''}`);
  wordInput.disabled = false;
  wordInput.focus();
  const digits = await setUpDigits({
    canvas: element<HTMLCanvasElement>('digit-canvas'),
    read: element<HTMLButtonElement>('digit-read'),
    clear: element<HTMLButtonElement>('digit-clear'),
    result: element<HTMLElement>('digits'),
    time: element<HTMLElement>('digit-time'),
    attention: element<HTMLImageElement>('digit-attention'),
    error: element<HTMLElement>('digit-error'),
    url: new URL('./digits/', location.href).href,
  });
  // For tests: read a 28 x 140 strip given as numbers in [0, 1] (row-major), as the Read button does.
  (globalThis as { mieReadDigits?: unknown }).mieReadDigits = async (pixels: number[]) => (await digits.read(Float32Array.from(pixels))).digits.join('');
  (globalThis as { mieReady?: boolean }).mieReady = true;
}

start().catch((error: Error) => {
  show('device', 'failed');
  show('error', error.message);
  (globalThis as { mieLoadError?: string }).mieLoadError = error.message;
});
