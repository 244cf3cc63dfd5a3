#!/usr/bin/env node
// Makes the model this package ships from a finished `mie train g2p` run:
//
//   node scripts/ship-model.mjs RUN_DIR "mie train g2p --minutes 60 --seed 0"   (after `pnpm build`)
//
// Copies RUN_DIR/model (config.json, model.safetensors) into model/, re-measures it on the test
// split through the CLI (`mie eval g2p --json`, greedy and 5 beams: the test split never trains
// or selects), and writes model/metrics.json with those numbers, the command that trained it and
// the run's training record (steps, best dev WER). The README quotes metrics.json.
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(dirname(fileURLToPath(import.meta.url)));
const [runDir, trainedWith] = process.argv.slice(2);
if (!runDir || !trainedWith) throw new Error('usage: node scripts/ship-model.mjs RUN_DIR "the mie train g2p command line"');
const model = join(here, 'model');
mkdirSync(model, { recursive: true });
for (const file of ['config.json', 'model.safetensors']) copyFileSync(join(runDir, 'model', file), join(model, file));

const cli = join(here, '..', 'cli', 'dist', 'bin.js');
const evaluate = (beams) => JSON.parse(execFileSync(process.execPath, [cli, 'eval', 'g2p', '--model', model, '--json', '--beams', String(beams)], { encoding: 'utf8' }));
const greedy = evaluate(1);
const beam = evaluate(5);
const run = existsSync(join(runDir, 'metrics.json')) ? JSON.parse(readFileSync(join(runDir, 'metrics.json'), 'utf8')) : null;
const metrics = {
  trainedWith,
  training: run?.training ?? null,
  parameters: run?.parameters ?? null,
  device: run?.device ?? null,
  test: {
    split: greedy.split,
    words: greedy.words,
    greedy: { wer: greedy.wer, per: greedy.per },
    beam5: { wer: beam.wer, per: beam.per },
    measuredWith: 'mie eval g2p --model node_modules/@mie/g2p-en/model --json [--beams 5]',
    device: greedy.device,
  },
  weightsBytes: statSync(join(model, 'model.safetensors')).size,
};
writeFileSync(join(model, 'metrics.json'), JSON.stringify(metrics, null, 2) + '\n');
console.log(`shipped ${resolve(runDir)}: test WER greedy ${(greedy.wer * 100).toFixed(1)}% (PER ${(greedy.per * 100).toFixed(1)}%), 5 beams ${(beam.wer * 100).toFixed(1)}% (PER ${(beam.per * 100).toFixed(1)}%), weights ${(metrics.weightsBytes / 1e6).toFixed(2)} MB`);
