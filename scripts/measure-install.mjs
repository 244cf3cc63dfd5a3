#!/usr/bin/env node
// Measures what a user of the model packages installs: packs the seven model packages (core,
// layers, attention, positional, embeddings, transformer, training), installs the tarballs into an
// empty folder with npm, as a new user would, and reports the size of node_modules, the largest
// packages in it, whether any plotting dependency came along, and the time `require` of
// @mie/core (and of all seven) takes in a fresh Node process (median of 7).
//
//   node scripts/measure-install.mjs           (run `pnpm build` first)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MODEL_PACKAGES, installProject, packModelPackages } from './model-packages.mjs';

const work = mkdtempSync(join(tmpdir(), 'mie-install-'));
const project = join(work, 'project');
installProject(project, packModelPackages(work));

const du = (path) => Number(execFileSync('du', ['-sb', path], { encoding: 'utf8' }).split('\t')[0]);
const modules = join(project, 'node_modules');
const total = du(modules);
const sizes = [];
for (const entry of readdirSync(modules)) {
  if (entry.startsWith('.')) continue;
  const names = entry.startsWith('@') ? readdirSync(join(modules, entry)).map((n) => `${entry}/${n}`) : [entry];
  for (const name of names) sizes.push([name, du(join(modules, name))]);
}
sizes.sort((a, b) => b[1] - a[1]);
const mb = (bytes) => `${(bytes / 1e6).toFixed(1)} MB`;
console.log(`install of the seven model packages: ${mb(total)} in node_modules (${sizes.length} packages)`);
for (const [name, size] of sizes.slice(0, 8)) console.log(`  ${name.padEnd(36)} ${mb(size)}`);
const plotting = ['pngjs', 'pureimage', 'opentype.js', '@mie/plot'].filter((name) => existsSync(join(modules, name)));
console.log(`plotting dependencies installed: ${plotting.length ? plotting.join(', ') : 'none'}`);

const time = (code) => {
  const runs = Array.from({ length: 7 }, () =>
    Number(execFileSync(process.execPath, ['-e', `const t = performance.now(); ${code}; process.stdout.write(String(performance.now() - t))`], { cwd: project, encoding: 'utf8' })),
  ).sort((a, b) => a - b);
  return runs[3];
};
console.log(`require('@mie/core'): ${time("require('@mie/core')").toFixed(0)} ms (median of 7 fresh processes)`);
console.log(`require of all seven: ${time(MODEL_PACKAGES.map((p) => `require('@mie/${p}')`).join(';')).toFixed(0)} ms`);
rmSync(work, { recursive: true, force: true });
