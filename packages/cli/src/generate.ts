/** `mie generate`: continues a prompt with a character language model trained by `mie train lm`, streaming the text. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CONFIG_FILE, MieConfigError, describeValue, ready } from '@mie/core';
import { CharLanguageModel } from './char-language-model';
import { loadModelDirectory } from './model-directory';

const NAME = 'mie generate';

/** Options of {@link generate}. */
export interface GenerateCommandOptions {
  /** Characters to generate at most (it stops earlier at the end of a document). Default 200. */
  maxNewTokens?: number;
  /** Sampling temperature; sampling is on when `temperature`, `topK` or `topP` is given, greedy otherwise (and with temperature 0). */
  temperature?: number;
  /** Sample among the `topK` most probable characters. */
  topK?: number;
  /** Sample from the smallest set of characters whose probability reaches `topP`. */
  topP?: number;
  /** Seed of the sampling. Default 1. */
  seed?: number;
  /** Beam search with this many beams (not with sampling). Default 1. */
  numBeams?: number;
  /** Where the text goes, piece by piece as it is generated. Default `process.stdout.write`. */
  write?: (text: string) => void;
}

/**
 * The model directory `dir` names: `dir` itself when it holds `config.json`, else `dir/model`
 * when that does (a run directory of `mie train lm`), else `dir` (which then fails to load, naming it).
 */
function modelDirectory(dir: string): string {
  if (!fs.existsSync(path.join(dir, CONFIG_FILE)) && fs.existsSync(path.join(dir, 'model', CONFIG_FILE))) return path.join(dir, 'model');
  return dir;
}

/**
 * `mie generate --model DIR --prompt TEXT`: writes the prompt, then each generated character as it
 * comes (beam search: each window's best text at once), then a line break; resolves to the
 * generated text. A prompt character outside the model's vocabulary, a directory that holds no
 * character language model, or options that do not go together are `MieConfigError`s naming them.
 */
export async function generate(dir: string, prompt: string, options: GenerateCommandOptions = {}): Promise<string> {
  const { maxNewTokens = 200, temperature, topK, topP, seed = 1, numBeams = 1, write = (text: string) => void process.stdout.write(text) } = options;
  if (typeof prompt !== 'string') throw new MieConfigError(`${NAME}: --prompt must be a text. Received: ${describeValue(prompt)}.`);
  if (!(Number.isSafeInteger(maxNewTokens) && maxNewTokens >= 1)) throw new MieConfigError(`${NAME}: --max-new-tokens must be an integer >= 1. Received: ${describeValue(maxNewTokens)}.`);
  if (temperature !== undefined && !(Number.isFinite(temperature) && temperature >= 0)) throw new MieConfigError(`${NAME}: --temperature must be a number >= 0. Received: ${describeValue(temperature)}.`);
  if (topK !== undefined && !(Number.isSafeInteger(topK) && topK >= 1)) throw new MieConfigError(`${NAME}: --top-k must be an integer >= 1. Received: ${describeValue(topK)}.`);
  if (topP !== undefined && !(Number.isFinite(topP) && topP > 0 && topP <= 1)) throw new MieConfigError(`${NAME}: --top-p must be a number in (0, 1]. Received: ${describeValue(topP)}.`);
  const doSample = temperature !== 0 && (temperature !== undefined || topK !== undefined || topP !== undefined);
  if (numBeams > 1 && doSample) throw new MieConfigError(`${NAME}: --num-beams ${numBeams} is beam search, which does not sample: drop --temperature, --top-k and --top-p, or --num-beams.`);
  await ready();
  const model = await loadModelDirectory(modelDirectory(dir), NAME);
  try {
    if (!(model instanceof CharLanguageModel)) {
      throw new MieConfigError(`${NAME}: --model ${dir} holds a ${model.constructor.name}, not a character language model (train one with "mie train lm").`);
    }
    const unknown = model.vocabulary.unknownCharacters(prompt);
    if (unknown.length > 0) {
      throw new MieConfigError(
        `${NAME}: --prompt holds ${unknown.length === 1 ? 'a character' : 'characters'} the model does not know: ${unknown.map((c) => JSON.stringify(c)).join(', ')}. ` +
          `It knows: ${JSON.stringify(model.vocabulary.characters.join(''))}.`,
      );
    }
    write(prompt);
    const text = await model.generateText(prompt, {
      maxNewTokens,
      doSample,
      ...(doSample ? { temperature: temperature ?? 1, topK: topK ?? 0, topP: topP ?? 1 } : {}),
      seed,
      numBeams,
      onText: write,
    });
    write('\n');
    return text;
  } finally {
    model.dispose();
  }
}
