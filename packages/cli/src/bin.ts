#!/usr/bin/env node
/**
 * The `mie` command line.
 *
 *   mie train g2p [--minutes N] [--out DIR] [--seed N] [--resume | --force]
 *   mie train lm [--minutes N] [--out DIR] [--seed N] [--resume | --force]
 *   mie train digits [--minutes N] [--out DIR] [--seed N] [--resume | --force]
 *   mie train iris [--out DIR] [--seed N] [--resume | --force]
 *   mie eval g2p [--model DIR] [--json] [--beams N]
 *   mie pronounce [--model DIR] [--beams N] WORD...
 *   mie generate --model DIR --prompt TEXT [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P] [--seed S] [--num-beams B]
 *   mie inspect --model DIR
 *   mie explain g2p [--model DIR] [--out DIR] WORD
 *   mie --version, mie --help, mie COMMAND --help
 *
 * Every failure a user can cause (a bad argument, a path that cannot be used, a file that is not
 * what it should be) is one line `mie: ...` on stderr and a non-zero exit code: 2 for a usage
 * error, 1 for the rest. Only an unexpected error (a bug) prints its stack.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { MieConfigError, MieError, tf } from '@mie/core';
import { bundledModelSource } from '@mie/g2p-en';
import { evalG2P, inspect, pronounce, trainIris } from './commands';
import { explainG2P } from './explain-g2p';
import { generate } from './generate';
import { trainG2P } from './train-g2p';
import { MAX_MINUTES } from './training-run';
import { trainDigits } from './train-digits';
import { trainLM } from './train-lm';

/**
 * Most beams `--beams` takes. Beam search keeps `beams x batch` sequences with their caches: far
 * beyond this it only costs memory (and `generate` with a million beams overflowed the stack or
 * ran for minutes before failing), while G2P accuracy stops improving after about 5.
 */
export const MAX_BEAMS = 64;
const MAX_BEAMS_TEXT = String(MAX_BEAMS);
/** Most characters `mie generate` writes in one call. */
export const MAX_NEW_TOKENS = 100_000;
/** Highest `--temperature`: far above 1 sampling is uniform noise. */
const MAX_TEMPERATURE = 100;

/** Each command's usage line and what it does, in the order `mie --help` lists them. */
const COMMANDS: ReadonlyArray<{ name: string; usage: string; summary: string; details: string }> = [
  {
    name: 'train g2p',
    usage: 'mie train g2p [--minutes N] [--out DIR] [--seed N] [--resume | --force]',
    summary: 'train a pronunciation model (default 10 minutes, out runs/g2p)',
    details: `Trains an encoder-decoder transformer from letters to ARPAbet phonemes on the CMU
Pronouncing Dictionary for N minutes (fractional allowed; default 10), keeps the checkpoint with
the best dev WER, then prints test WER and PER (greedy and 5 beams) and sample words.
  --minutes N  the training budget in minutes (0 < N <= ${MAX_MINUTES})
  --out DIR    where the run goes (default runs/g2p): DIR/model, DIR/train, DIR/metrics.json, plots
  --seed N     the seed of initialisation, shuffling and dropout (default 1)
  --resume     continue the run in DIR exactly (its architecture, data order and step)
  --force      delete the files a run writes in DIR (never others) and start over`,
  },
  {
    name: 'train lm',
    usage: 'mie train lm [--minutes N] [--out DIR] [--seed N] [--resume | --force]',
    summary: 'train a character language model (default 10 minutes, out runs/lm)',
    details: `Trains a decoder-only transformer to predict the next character of the Brown Corpus for N
minutes (fractional allowed; default 10), keeps the checkpoint with the best validation bits per
character, then prints validation and test bits per character against the unigram and bigram
baselines, and sampled continuations.
  --minutes N  the training budget in minutes (0 < N <= ${MAX_MINUTES})
  --out DIR    where the run goes (default runs/lm): DIR/model, DIR/train, DIR/metrics.json, DIR/loss-curve.png
  --seed N     the seed of initialisation, the training windows and the samples (default 1)
  --resume     continue the run in DIR exactly (its architecture, schedule, data order and step)
  --force      delete the files a run writes in DIR (never others) and start over`,
  },
  {
    name: 'train digits',
    usage: 'mie train digits [--minutes N] [--out DIR] [--seed N] [--resume | --force]',
    summary: 'train a reader of handwritten digit strips (default 10 minutes, out runs/digits)',
    details: `Trains an image-to-sequence transformer (a ViT encoder over 14 x 14 patches and a text
decoder) to read strips of 1 to 5 handwritten MNIST digits (28 x 140 pixels) for N minutes
(fractional allowed; default 10), keeps the checkpoint with the best validation sequence
accuracy, then prints test sequence accuracy and digit error rate on 10,000 strips of MNIST test
digits (greedy and 5 beams) and draws where the model looks for each digit of a few test strips.
  --minutes N  the training budget in minutes (0 < N <= ${MAX_MINUTES})
  --out DIR    where the run goes (default runs/digits): DIR/model, DIR/train, DIR/metrics.json,
               DIR/loss-curve.png, DIR/attention-N.png
  --seed N     the seed of initialisation and of the training strips (default 1)
  --resume     continue the run in DIR exactly (its architecture, schedule, data order and step)
  --force      delete the files a run writes in DIR (never others) and start over`,
  },
  {
    name: 'train iris',
    usage: 'mie train iris [--out DIR] [--seed N] [--resume | --force]',
    summary: 'train the Iris flower classifier (out runs/iris)',
    details: `Trains a FeedForwardClassifier on the Iris data set and prints its test accuracy.
  --out DIR    where the run goes (default runs/iris)
  --seed N     the seed (default 1)
  --resume     continue the run in DIR
  --force      delete the files a run writes in DIR and start over`,
  },
  {
    name: 'eval g2p',
    usage: 'mie eval g2p [--model DIR] [--json] [--beams N]',
    summary: 'test WER/PER of a saved model (N: 1 to 64 beams)',
    details: `Decodes the test split with a saved G2P model and prints word and phoneme error rates.
  --model DIR  a model directory (config.json + model.safetensors), e.g. runs/g2p/model;
               default: the pretrained English model of @mie/g2p-en
  --json       print one JSON object instead of text
  --beams N    beam search with N beams (1 to ${MAX_BEAMS_TEXT}; default 1, greedy)`,
  },
  {
    name: 'pronounce',
    usage: 'mie pronounce [--model DIR] [--beams N] WORD...',
    summary: 'pronounce words',
    details: `Prints each word's phonemes (ARPAbet) as a G2P model predicts them.
  --model DIR  a model directory, e.g. runs/g2p/model; default: the pretrained English model of
               @mie/g2p-en (so \`npx mie pronounce hello\` works right after install)
  --beams N    beam search with N beams (1 to ${MAX_BEAMS_TEXT}; default 1, greedy)`,
  },
  {
    name: 'generate',
    usage: 'mie generate --model DIR --prompt TEXT [--max-new-tokens N] [OPTIONS]',
    summary: 'continue a text with a character language model',
    details: `Prints the prompt and its continuation by a model of "mie train lm", character by character as
they come. Greedy unless --temperature, --top-k or --top-p is given (then sampled); --num-beams
runs beam search. Longer continuations than the model's context slide a window over the text.
  --model DIR           a model directory (runs/lm/model) or a run directory of mie train lm (runs/lm)
  --prompt TEXT         the start of the text ("" starts a document from nothing)
  --max-new-tokens N    characters to generate at most (1 to ${MAX_NEW_TOKENS}; default 200); a document's end stops earlier
  --temperature T       sample with temperature T (0 to ${MAX_TEMPERATURE}; 0 is greedy)
  --top-k K             sample among the K most probable characters
  --top-p P             sample from the smallest set of characters whose probability reaches P (0 < P <= 1)
  --seed S              the seed of the sampling (default 1)
  --num-beams B         beam search with B beams (1 to ${MAX_BEAMS_TEXT}; default 1; not with sampling)`,
  },
  {
    name: 'explain g2p',
    usage: 'mie explain g2p [--model DIR] [--out DIR] WORD',
    summary: 'pictures of how a G2P model pronounces WORD',
    details: `Pronounces WORD greedily, runs the model once more over the pronunciation with its activations
recorded, and draws, as PNG and SVG: every decoder layer x head cross-attention pattern (letters
across, phonemes down), every encoder layer x head self-attention pattern, and the logit lens
(the phoneme each decoder layer would predict next). Prints the pronunciation and the files.
  --model DIR  a model directory, e.g. runs/g2p/model; default: the pretrained English model of @mie/g2p-en
  --out DIR    where the pictures go (default explain-WORD): cross-attention-grid, self-attention-grid, logit-lens`,
  },
  {
    name: 'inspect',
    usage: 'mie inspect --model DIR',
    summary: 'config, parameters per module, device',
    details: `Prints a saved model's class, config, parameter count per module and the device it loads on.
  --model DIR  a model directory`,
  },
];

const USAGE_LINES: Array<[string, string]> = [
  ...COMMANDS.map((c): [string, string] => [c.usage, c.summary]),
  ['mie --version', 'the versions of mie, @mie/core, tfjs-core and Node'],
  ['mie COMMAND --help', "one command's options"],
];
const USAGE_WIDTH = Math.max(...USAGE_LINES.map(([usage]) => usage.length));

const USAGE = `usage:
${USAGE_LINES.map(([usage, summary]) => `  ${usage.padEnd(USAGE_WIDTH)}   ${summary}`).join('\n')}

An --out DIR that already holds a run is refused: --resume continues it, --force deletes the
files a run writes there (never others) and starts over.`;

/** `mie --version`: this package's version, and those of @mie/core and tfjs-core it runs on. */
export function versionText(): string {
  const own = (JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;
  const core = (JSON.parse(readFileSync(require.resolve('@mie/core/package.json'), 'utf8')) as { version: string }).version;
  return `mie ${own} (@mie/core ${core}, @tensorflow/tfjs-core ${tf.version_core}, Node ${process.versions.node})`;
}


/** A command line that does not parse or does not fit its command (exit code 2). */
export class MieUsageError extends MieConfigError {}

/** The options each command accepts (`--help` goes with all). */
const COMMAND_OPTIONS: Record<string, readonly string[]> = {
  'train g2p': ['minutes', 'out', 'seed', 'resume', 'force'],
  'train lm': ['minutes', 'out', 'seed', 'resume', 'force'],
  'train digits': ['minutes', 'out', 'seed', 'resume', 'force'],
  'train iris': ['out', 'seed', 'resume', 'force'],
  'eval g2p': ['model', 'json', 'beams'],
  pronounce: ['model', 'beams'],
  generate: ['model', 'prompt', 'max-new-tokens', 'temperature', 'top-k', 'top-p', 'seed', 'num-beams'],
  inspect: ['model'],
  'explain g2p': ['model', 'out'],
};

/** A number in (0, max]; `--minutes` may be fractional. */
function positiveNumber(value: string | undefined, name: string, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  const parsed = /^\s*[0-9.eE+-]+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(parsed) || parsed <= 0 || parsed > max) throw new MieUsageError(`--${name} must be a number in (0, ${max}], got ${JSON.stringify(value.slice(0, 40))}`);
  return parsed;
}

/** A number in [min, max] (`--temperature 0` is allowed); undefined when the option is absent. */
function numberIn(value: string | undefined, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  const parsed = /^\s*[0-9.eE+-]+\s*$/.test(value) ? Number(value) : NaN;
  if (!Number.isFinite(parsed) || parsed < min || parsed > max) throw new MieUsageError(`--${name} must be a number in [${min}, ${max}], got ${JSON.stringify(value.slice(0, 40))}`);
  return parsed;
}

/** A whole number in [min, max], in decimal (`1000000` or `1e6`; not `0x10`, not empty). */
function integer(value: string | undefined, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  const parsed = /^[0-9]{1,16}(\.[0-9]{1,16})?([eE]\+?[0-9]{1,3})?$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new MieUsageError(`--${name} must be an integer ${range}, got ${JSON.stringify(value.slice(0, 40))}`);
  }
  return parsed;
}

/** Options whose value may be a negative number (`--minutes -1`), which parseArgs would take for an option. */
const NUMERIC_OPTIONS = new Set(['--minutes', '--seed', '--beams', '--max-new-tokens', '--temperature', '--top-k', '--top-p', '--num-beams']);

function parse(argv: string[]) {
  // `--minutes -1` -> `--minutes=-1`, so that the value is checked (and refused) as a number.
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (NUMERIC_OPTIONS.has(argv[i]) && /^-[0-9.]/.test(argv[i + 1] ?? '')) args.push(`${argv[i]}=${argv[++i]}`);
    else args.push(argv[i]);
  }
  try {
    return parseArgs({
      args,
      allowPositionals: true,
      options: {
        minutes: { type: 'string' },
        out: { type: 'string' },
        seed: { type: 'string' },
        resume: { type: 'boolean' },
        force: { type: 'boolean' },
        model: { type: 'string' },
        json: { type: 'boolean' },
        beams: { type: 'string' },
        prompt: { type: 'string' },
        'max-new-tokens': { type: 'string' },
        temperature: { type: 'string' },
        'top-k': { type: 'string' },
        'top-p': { type: 'string' },
        'num-beams': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    // Node's ERR_PARSE_ARGS_* errors: an unknown option, a missing value.
    const message: unknown = typeof error === 'object' && error !== null ? Object.getOwnPropertyDescriptor(error, 'message')?.value : undefined;
    throw new MieUsageError(typeof message === 'string' ? message : 'the arguments do not parse');
  }
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code, throws on failure. */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv);
  const [command, target, ...rest] = positionals;
  if (values.version && !command) {
    console.log(versionText());
    return 0;
  }
  if (!command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const name = command === 'train' || command === 'eval' || command === 'explain' ? `${command} ${target ?? ''}`.trim() : command;
  const allowed = COMMAND_OPTIONS[name];
  if (allowed === undefined) throw new MieUsageError(`unknown command "${positionals.join(' ').slice(0, 80)}"`);
  if (values.help) {
    const entry = COMMANDS.find((c) => c.name === name)!;
    console.log(`usage: ${entry.usage}\n\n${entry.details}`);
    return 0;
  }
  for (const [option, value] of Object.entries(values)) {
    if (value !== undefined && !allowed.includes(option)) throw new MieUsageError(`mie ${name} takes no --${option}`);
  }
  const extra = name === 'pronounce' || name === 'explain g2p' ? [] : name === 'inspect' || name === 'generate' ? [target, ...rest].filter((p) => p !== undefined) : rest;
  if (extra.length) throw new MieUsageError(`mie ${name} takes no argument ${JSON.stringify(extra[0].slice(0, 40))}`);
  const seed = integer(values.seed, 'seed', 1, 0);
  const needModel = () => {
    if (!values.model) throw new MieUsageError(`${command} needs --model DIR`);
    return values.model;
  };
  // pronounce, eval g2p and explain g2p default to the pretrained English model of @mie/g2p-en.
  const g2pModel = () => values.model ?? bundledModelSource();
  const resume = values.resume ?? false;
  const force = values.force ?? false;
  if (resume && force) throw new MieUsageError('--resume and --force cannot be combined');
  if (name === 'train g2p') {
    const metrics = await trainG2P({ minutes: positiveNumber(values.minutes, 'minutes', 10, MAX_MINUTES), out: values.out ?? 'runs/g2p', seed, resume, force });
    return Number.isFinite(metrics.test.greedy.wer) ? 0 : 1;
  }
  if (name === 'train lm') {
    const metrics = await trainLM({ minutes: positiveNumber(values.minutes, 'minutes', 10, MAX_MINUTES), out: values.out ?? 'runs/lm', seed, resume, force });
    return Number.isFinite(metrics.test.model) ? 0 : 1;
  }
  if (name === 'train digits') {
    const metrics = await trainDigits({ minutes: positiveNumber(values.minutes, 'minutes', 10, MAX_MINUTES), out: values.out ?? 'runs/digits', seed, resume, force });
    return Number.isFinite(metrics.test.greedy.sequenceAccuracy) ? 0 : 1;
  }
  if (name === 'generate') {
    if (values.prompt === undefined) throw new MieUsageError('generate needs --prompt TEXT');
    const topP = numberIn(values['top-p'], 'top-p', 0, 1);
    if (topP === 0) throw new MieUsageError(`--top-p must be a number in (0, 1], got "0"`);
    await generate(needModel(), values.prompt, {
      maxNewTokens: integer(values['max-new-tokens'], 'max-new-tokens', 200, 1, MAX_NEW_TOKENS),
      temperature: numberIn(values.temperature, 'temperature', 0, MAX_TEMPERATURE),
      topK: values['top-k'] === undefined ? undefined : integer(values['top-k'], 'top-k', 0, 1),
      topP,
      seed,
      numBeams: integer(values['num-beams'], 'num-beams', 1, 1, MAX_BEAMS),
    });
    return 0;
  }
  if (name === 'train iris') {
    await trainIris({ out: values.out ?? 'runs/iris', seed, resume, force });
    return 0;
  }
  if (name === 'explain g2p') {
    if (rest.length === 0) throw new MieUsageError('mie explain g2p needs one WORD');
    if (rest.length > 1) throw new MieUsageError(`mie explain g2p takes one WORD, got ${rest.length}`);
    await explainG2P(g2pModel(), rest[0], { out: values.out });
    return 0;
  }
  const numBeams = integer(values.beams, 'beams', 1, 1, MAX_BEAMS);
  if (name === 'eval g2p') {
    await evalG2P(g2pModel(), { json: values.json ?? false, numBeams });
    return 0;
  }
  if (name === 'pronounce') {
    const words = [target, ...rest].filter((w): w is string => w !== undefined);
    await pronounce(g2pModel(), words, { numBeams });
    return 0;
  }
  await inspect(needModel());
  return 0;
}

/** Where {@link run} writes. */
export interface ConsoleLike {
  error: (text: string) => void;
}

/**
 * Runs the command line and turns every failure into an exit code: a usage error prints one line
 * `mie: ...` (and a pointer to `--help`) and gives 2; any other MIE error prints `mie: <message>`
 * and gives 1; anything else is a bug and prints its stack (exit code 1).
 */
export async function run(argv: string[], io: ConsoleLike = console): Promise<number> {
  try {
    return await main(argv);
  } catch (error) {
    if (error instanceof MieUsageError) {
      io.error(`${oneLine(error.message)} (mie --help shows the usage)`);
      return 2;
    }
    if (error instanceof MieError) {
      io.error(oneLine(error.message));
      return 1;
    }
    io.error(String((error as Error)?.stack ?? error));
    return 1;
  }
}

/**
 * `mie: <message>` on one line (a file name or a nested message may hold line breaks); a message
 * that names its command (`mie train g2p: ...`) keeps the name without repeating "mie".
 */
function oneLine(message: string): string {
  const flat = message.replace(/\s*[\r\n]+\s*/g, ' ');
  return `mie: ${flat.replace(/^mie:? /, '')}`;
}

if (require.main === module) {
  run(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
