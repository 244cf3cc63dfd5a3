#!/usr/bin/env node
// Release checks run by CI: each publishable package packs with real version ranges (no
// `workspace:` or `catalog:` left in its manifest) and with its built entry points, and exactly
// one version of @tensorflow/tfjs-core is installed (two would mean two tfjs engines); each
// tarball carries the repository's LICENSE (MIT) and a README.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const problems = [];
const work = mkdtempSync(join(tmpdir(), 'mie-pack-'));
const rootLicense = readFileSync(join(root, 'LICENSE'), 'utf8');

for (const dir of readdirSync(join(root, 'packages'))) {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8'));
  if (manifest.private) continue;
  const out = join(work, dir);
  execFileSync('pnpm', ['pack', '--pack-destination', out], { cwd: join(root, 'packages', dir), stdio: 'pipe' });
  const tarball = readdirSync(out).find((f) => f.endsWith('.tgz'));
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
  console.log(`packed ${manifest.name}@${packed.version}: ${files.filter(Boolean).length} files`);
}
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
