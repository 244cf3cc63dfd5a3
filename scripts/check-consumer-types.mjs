#!/usr/bin/env node
// Type-checks a consumer project against the packed packages, as a user's compiler sees them:
// the seven model packages, @mie/insight, @mie/plot, @mie/g2p-en and @mie/cli installed from their tarballs with npm, and
// TypeScript strict with `skipLibCheck: false` (every .d.ts of every installed package checked),
// as an ES module project (node16, .mts with top-level await) and as a CommonJS one, with
// TypeScript 5.9 and with the workspace's TypeScript 6.
//
// TypeScript 6's lib.dom declares WebGPU itself, and tfjs-core 4.22's declarations reference
// @webgpu/types (pinned at 0.1.38; the latest conflicts too), so on TypeScript 6 the two collide:
// those errors, and only those, are tolerated there (tfjs's, not MIE's; skipLibCheck hides them).
//
//   node scripts/check-consumer-types.mjs       (after `pnpm build`)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PACKAGES, ROOT, installProject, packModelPackages } from './model-packages.mjs';

const work = mkdtempSync(join(tmpdir(), 'mie-types-'));
const pack = (dir) => {
  const out = join(work, 'packs', dir);
  execFileSync('pnpm', ['pack', '--pack-destination', out], { cwd: join(ROOT, 'packages', dir), stdio: 'pipe' });
  return join(out, readdirSync(out).find((f) => f.endsWith('.tgz')));
};
const typescript = JSON.parse(execFileSync('node', ['-p', "JSON.stringify(require('typescript/package.json'))"], { cwd: ROOT, encoding: 'utf8' })).version;
const tarballs = [...packModelPackages(work), pack('insight'), pack('plot'), pack('g2p-en'), pack('cli')];

const uses = `
import { BaseModel, getDevice, setBackend, tf, type DeviceInfo } from '@mie/core';
import { FeedForwardClassifier } from '@mie/layers';
import { MultiHeadAttention } from '@mie/attention';
import { PositionalEncoding } from '@mie/positional';
import { TokenEmbedding } from '@mie/embeddings';
import { EncoderDecoderTransformer } from '@mie/transformer';
import { AdamW, crossEntropyLoss } from '@mie/training';
import { renderLineChart } from '@mie/plot';
import { G2PModel } from '@mie/cli';
import { pronounce } from '@mie/g2p-en';
import { runWithCache, type ActivationCache } from '@mie/insight';

export async function main(): Promise<DeviceInfo> {
  const device = await setBackend('cpu');
  const model = new EncoderDecoderTransformer({ srcVocabSize: 8, tgtVocabSize: 8, dModel: 8, numHeads: 2, numEncoderLayers: 1, numDecoderLayers: 1, dFf: 16, maxSeqLength: 8 });
  const logits: tf.Tensor = model.forward(tf.tensor2d([[1, 2]], [1, 2], 'int32'), tf.tensor2d([[1]], [1, 1], 'int32'));
  const loss = crossEntropyLoss(logits, tf.tensor2d([[2]], [1, 1], 'int32'));
  const optimizer = new AdamW(model, { lr: 1e-3 });
  const copy: BaseModel = BaseModel.fromBuffers(await model.toBuffersAsync());
  const phonemes: string[][] = await pronounce(['hello'], { beams: 2 });
  const { output, cache }: { output: tf.Tensor; cache: ActivationCache } = await runWithCache(model, () => model.forward(tf.tensor2d([[1, 2]], [1, 2], 'int32'), tf.tensor2d([[1]], [1, 1], 'int32')));
  const pattern: tf.Tensor = cache.get('decoder.layers.0.crossAttn.hookPattern');
  void [phonemes, output, pattern, FeedForwardClassifier, MultiHeadAttention, PositionalEncoding, TokenEmbedding, renderLineChart, G2PModel, getDevice, optimizer, copy];
  tf.dispose([logits, loss]);
  return device;
}
`;

const compilerOptions = { strict: true, skipLibCheck: false, noEmit: true, target: 'es2022', types: ['node'] };
/** The errors TypeScript 6 gives any tfjs-core 4.22 consumer (see the top). */
const TYPESCRIPT_6_WEBGPU = /^node_modules\/(@webgpu\/types\/dist\/index\.d\.ts|typescript\/lib\/lib\.dom\.d\.ts)\(/;

const problems = [];
for (const [label, type, module, file, extra] of [
  ['ES module', 'module', 'node16', 'index.mts', 'console.log(await main());\n'],
  ['CommonJS', undefined, 'node16', 'index.ts', 'void main().then(console.log);\n'],
]) {
  const project = join(work, type ?? 'commonjs');
  installProject(project, [...tarballs, `typescript@${typescript}`, 'typescript59@npm:typescript@5.9', '@types/node@20'], { type });
  writeFileSync(join(project, 'tsconfig.json'), JSON.stringify({ compilerOptions: { ...compilerOptions, module, moduleResolution: module }, files: [file] }, null, 2));
  writeFileSync(join(project, file), uses + extra);
  for (const [compiler, tolerated] of [['typescript59', null], ['typescript', TYPESCRIPT_6_WEBGPU]]) {
    const tsc = join(project, 'node_modules', compiler, 'bin', 'tsc');
    const version = execFileSync(process.execPath, [tsc, '--version'], { encoding: 'utf8' }).trim();
    let output = '';
    try {
      execFileSync(process.execPath, [tsc, '-p', project], { cwd: project, encoding: 'utf8', stdio: 'pipe' });
    } catch (error) {
      output = String(error.stdout || error.message);
    }
    const errors = output.split('\n').filter((line) => /error TS\d+/.test(line));
    const ours = errors.filter((line) => !tolerated?.test(line));
    if (ours.length) problems.push(`${label} consumer, ${version}:\n${ours.join('\n').slice(0, 4000)}`);
    else console.log(`${label} consumer, ${version} (strict, skipLibCheck: false): ${errors.length ? `only the ${errors.length} tfjs/@webgpu/types conflicts with lib.dom` : 'no type error'}`);
  }
}
if (process.env.MIE_KEEP) console.log(`kept ${work}`);
else rmSync(work, { recursive: true, force: true });
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`consumer types checked against ${MODEL_PACKAGES.length + 3} packed packages`);
