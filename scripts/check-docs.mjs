#!/usr/bin/env node
// The public contract and the design live in docs/ (docs/API.md, docs/models-design.md) as
// copies of the masters the project is specified by, in the folder `shared/` beside the
// repository (or MIE_SHARED_DIR). Fails when a copy differs from its master; where the masters
// are not there (a clone on its own), says so and passes.
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const shared = resolve(process.env.MIE_SHARED_DIR ?? join(root, '..', 'shared'));
const DOCS = ['API.md', 'models-design.md'];

const problems = [];
for (const name of DOCS) {
  const copy = join(root, 'docs', name);
  if (!existsSync(copy)) problems.push(`docs/${name} is missing`);
}
if (!existsSync(join(shared, 'API.md'))) {
  console.log(`check-docs: no masters at ${shared} (set MIE_SHARED_DIR); docs/ present, not compared`);
} else {
  for (const name of DOCS) {
    const master = join(shared, name);
    const copy = join(root, 'docs', name);
    if (!existsSync(master) || !existsSync(copy)) continue;
    if (readFileSync(master, 'utf8') !== readFileSync(copy, 'utf8')) problems.push(`docs/${name} differs from ${master}: copy it again (cp ${master} docs/${name})`);
  }
}
if (problems.length) {
  console.error(`check-docs:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('check-docs: docs/API.md and docs/models-design.md are the current contract and design');
