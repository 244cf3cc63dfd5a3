// The seven published model packages, packed and installed as a user would get them: shared by
// scripts/measure-install.mjs and the browser suite's outside project
// (packages/browser-tests/scripts/outside-project.mjs). Needs `pnpm build` first.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = new URL('..', import.meta.url).pathname;
export const MODEL_PACKAGES = ['core', 'layers', 'attention', 'positional', 'embeddings', 'transformer', 'training'];

/** `pnpm pack` of `packages/<dir>` into `work/packs/<dir>`; returns the tarball's path. */
export function packPackage(work, dir) {
  const out = join(work, 'packs', dir);
  execFileSync('pnpm', ['pack', '--pack-destination', out], { cwd: join(ROOT, 'packages', dir), stdio: 'pipe' });
  return join(out, readdirSync(out).find((f) => f.endsWith('.tgz')));
}

/** `pnpm pack` of each model package into `work/packs`; returns the tarball paths. */
export function packModelPackages(work) {
  return MODEL_PACKAGES.map((dir) => packPackage(work, dir));
}

/** A fresh npm project at `project` with `specs` (tarball paths, `name@version`) installed by npm. */
export function installProject(project, specs, { type } = {}) {
  mkdirSync(project, { recursive: true });
  writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'outside', version: '1.0.0', private: true, ...(type ? { type } : {}) }));
  execFileSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', ...specs], { cwd: project, stdio: 'pipe' });
}
