#!/usr/bin/env node
// Release checks run by CI: each publishable package packs with real version ranges (no
// `workspace:` or `catalog:` left in its manifest) and with its built entry points, and exactly
// one version of @tensorflow/tfjs-core is installed (two would mean two tfjs engines); each
// tarball carries the repository's LICENSE (MIT) and a README, stays within its size budget, and
// a fresh npm install of all of them runs `mie pronounce hello world` out of the box.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { installProject } from './model-packages.mjs';

const root = new URL('..', import.meta.url).pathname;
const problems = [];
const work = mkdtempSync(join(tmpdir(), 'mie-pack-'));
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');
const tarballs = [];

for (const dir of readdirSync(join(root, 'packages'))) {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));
  if (manifest.private) continue;
  const out = join(work, dir);
  execFileSync('pnpm', ['pack', '--pack-destination', out], { cwd: join(root, 'packages', dir), stdio: 'pipe' });
  const tarball = readdirSync(out).find((f) => f.endsWith('.tgz'));
  tarballs.push(join(out, tarball));
  const files = execFileSync('tar', ['-tzf', join(out, tarball)], { encoding: 'utf8' }).split('\n');
  const packed = JSON.parse(execFileSync('tar', ['-xzOf', join(out, tarball), 'package/package.json'], { encoding: 'utf8' }));
  for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies', 'devDependencies']) {
    for (const [name, range] of Object.entries(packed[field] ?? {})) {
      if (/^(workspace|catalog):/.test(range)) problems.push(`${manifest.name}: ${field}.${name} is still "${range}" in the packed manifest`);
    }
  }
  for (const entry of ['package/dist/index.js', 'package/dist/index.d.ts']) {
    if (!files.includes(entry)) problems.push(`${manifest.name}: the tarball lacks ${entry.slice(8)} (run the build first)`);
  }
  if (files.some((f) => f.endsWith('.test.ts') || f.endsWith('.test.js'))) problems.push(`${manifest.name}: the tarball ships tests`);
  for (const doc of ['LICENSE', 'README.md']) {
    if (!files.includes(`package/${doc}`)) problems.push(`${manifest.name}: the tarball lacks ${doc}`);
  }
  if (files.includes('package/LICENSE')) {
    const license = execFileSync('tar', ['-xzOf', join(out, tarball), 'package/LICENSE'], { encoding: 'utf8' });
    if (license !== rootLicense) problems.push(`${manifest.name}: its LICENSE differs from the repository's (copy ../../LICENSE)`);
  }
  if (packed.license !== 'MIT') problems.push(`${manifest.name}: license is ${JSON.stringify(packed.license)}, expected "MIT" (the LICENSE file)`);
  const bytes = statSync(join(out, tarball)).size;
  const limit = manifest.name === '@mie/g2p-en' ? 8e6 : 2e6; // the pretrained model's package holds its weights
  if (bytes > limit) problems.push(`${manifest.name}: the tarball is ${(bytes / 1e6).toFixed(2)} MB, over its ${limit / 1e6} MB budget`);
  console.log(`packed ${manifest.name}@${packed.version}: ${files.filter(Boolean).length} files, ${(bytes / 1e6).toFixed(2)} MB`);
}
// A new user's first command: the tarballs installed into an empty folder with npm, then
// `mie pronounce hello world` with no model given (the pretrained @mie/g2p-en one) and no training.
const project = join(work, 'first-use');
installProject(project, tarballs);
const mie = join(project, 'node_modules', '.bin', 'mie');
const printed = execFileSync(mie, ['pronounce', 'hello', 'world'], { cwd: project, encoding: 'utf8' }).trim().split('\n');
if (printed.length !== 2 || !/^hello\t[A-Z]+( [A-Z]+)*$/.test(printed[0]) || !/^world\t[A-Z]+( [A-Z]+)*$/.test(printed[1])) {
  problems.push(`npx mie pronounce hello world in a fresh install printed ${JSON.stringify(printed)}`);
} else console.log(`fresh install: mie pronounce hello world -> ${printed.map((line) => line.split('\t')[1]).join(' | ')}`);
const version = execFileSync(mie, ['--version'], { cwd: project, encoding: 'utf8' }).trim();
if (!/^mie \d+\.\d+\.\d+ \(@mie\/core /.test(version)) problems.push(`mie --version printed ${JSON.stringify(version)}`);
rmSync(work, { recursive: true, force: true });

const versions = new Set(
  readdirSync(join(root, 'node_modules', '.pnpm'))
    .map((d) => /^@tensorflow\+tfjs-core@([^_]+)/.exec(d)?.[1])
    .filter(Boolean),
);
if (versions.size !== 1) problems.push(`expected exactly one @tensorflow/tfjs-core installed, found: ${[...versions].join(', ') || 'none'}`);
else console.log(`one @tensorflow/tfjs-core installed: ${[...versions][0]}`);

if (problems.length) {
  console.error(`package checks failed:\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
console.log('package checks passed');
