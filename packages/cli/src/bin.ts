#!/usr/bin/env node
/**
 * The `mie` command line.
 *
 *   mie train g2p [--minutes N] [--out DIR] [--seed N] [--resume]
 *   mie train iris [--out DIR] [--seed N]
 *   mie eval g2p --model DIR [--json] [--beams N]
 *   mie pronounce --model DIR [--beams N] WORD...
 *   mie inspect --model DIR
 */
import { parseArgs } from 'node:util';
import { MieError } from '@mie/core';
import { evalG2P, inspect, pronounce, trainIris } from './commands';
import { trainG2P } from './train-g2p';

const USAGE = `usage:
  mie train g2p [--minutes N] [--out DIR] [--seed N] [--resume]   train a pronunciation model (default 10 minutes, out runs/g2p)
  mie train iris [--out DIR] [--seed N]                           train the Iris flower classifier
  mie eval g2p --model DIR [--json] [--beams N]                   test WER/PER of a saved model
  mie pronounce --model DIR [--beams N] WORD...                   pronounce words
  mie inspect --model DIR                                         config, parameters per module, device`;

class UsageError extends Error {}

function number(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new UsageError(`--${name} must be a positive number, got "${value}"`);
  return parsed;
}

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      minutes: { type: 'string' },
      out: { type: 'string' },
      seed: { type: 'string' },
      resume: { type: 'boolean' },
      model: { type: 'string' },
      json: { type: 'boolean' },
      beams: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, target, ...rest] = positionals;
  if (values.help || !command) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isSafeInteger(seed) || seed < 0) throw new UsageError(`--seed must be a non-negative integer, got "${values.seed}"`);
  const needModel = () => {
    if (!values.model) throw new UsageError(`${command} needs --model DIR`);
    return values.model;
  };
  if (command === 'train' && target === 'g2p') {
    const metrics = await trainG2P({ minutes: number(values.minutes, 'minutes', 10), out: values.out ?? 'runs/g2p', seed, resume: values.resume ?? false });
    return Number.isFinite(metrics.test.greedy.wer) ? 0 : 1;
  }
  if (command === 'train' && target === 'iris') {
    await trainIris({ out: values.out ?? 'runs/iris', seed });
    return 0;
  }
  if (command === 'eval' && target === 'g2p') {
    await evalG2P(needModel(), { json: values.json ?? false, numBeams: number(values.beams, 'beams', 1) });
    return 0;
  }
  if (command === 'pronounce') {
    await pronounce(needModel(), [target, ...rest].filter((w): w is string => w !== undefined), { numBeams: number(values.beams, 'beams', 1) });
    return 0;
  }
  if (command === 'inspect') {
    await inspect(needModel());
    return 0;
  }
  throw new UsageError(`unknown command "${positionals.join(' ')}"`);
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      if (error instanceof UsageError || (error as { code?: string })?.code?.startsWith('ERR_PARSE_ARGS')) {
        console.error(`mie: ${(error as Error).message}\n${USAGE}`);
        process.exitCode = 2;
      } else if (error instanceof MieError) {
        console.error(`mie: ${error.message}`);
        process.exitCode = 1;
      } else {
        console.error(error);
        process.exitCode = 1;
      }
    },
  );
}
