/**
 * What MIE needs from its host runtime, Node's version: environment variables, warnings, the
 * machine's memory, and loading optional packages. Browser bundles get host-browser.ts instead
 * (package.json "browser"), so that no `process`, `require` or `node:*` module is reached there.
 */
import * as os from 'node:os';

/** Which host this is. */
export const HOST: 'node' | 'browser' = 'node';

/** An environment variable (`MIE_BACKEND`, ...), or undefined. */
export function environmentVariable(name: string): string | undefined {
  return process.env[name];
}

/** A warning the user should see once (Node's process warnings). */
export function emitWarning(message: string): void {
  process.emitWarning(message);
}

/** The machine's memory (a container's limit when there is one), in bytes. */
export function hostMemory(): number | undefined {
  const constrained = (process as { constrainedMemory?: () => number | undefined }).constrainedMemory?.();
  const total = os.totalmem();
  return constrained && constrained > 0 && constrained < total ? constrained : total;
}

/** Memory the process holds (resident set), in bytes. */
export function residentMemory(): number | undefined {
  return process.memoryUsage.rss();
}

/** Loads an installed CommonJS package (optional peers), as `require` does. */
export function loadOptionalModule(name: string): unknown {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(name);
}

/** Imports an installed ES module package (`webgpu` is one), as `import()` does. */
export function importOptionalModule(name: string): Promise<unknown> {
  return import(name);
}
