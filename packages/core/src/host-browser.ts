/**
 * The browser's version of host.ts (package.json "browser" maps one onto the other): no
 * environment variables (a page may set `globalThis.MIE_ENV = { MIE_BACKEND: 'webgl' }`), warnings
 * on the console, no machine memory figures, and no loading of packages at run time: a browser
 * bundle contains what the page imported.
 */
import type * as NodeHost from './host';

export const HOST: typeof NodeHost.HOST = 'browser';

export const environmentVariable: typeof NodeHost.environmentVariable = (name) => {
  const env = (globalThis as { MIE_ENV?: Record<string, unknown> }).MIE_ENV;
  const value = env?.[name];
  return typeof value === 'string' ? value : undefined;
};

export const emitWarning: typeof NodeHost.emitWarning = (message) => {
  console.warn(message);
};

export const hostMemory: typeof NodeHost.hostMemory = () => undefined;

export const residentMemory: typeof NodeHost.residentMemory = () => undefined;

/** Throws the error `require` throws for a package that is not installed: a bundle has only what it imported. */
export const loadOptionalModule: typeof NodeHost.loadOptionalModule = (name) => {
  throw Object.assign(new Error(`Cannot find module '${name}' (a browser bundle contains only the packages the page imports)`), { code: 'MODULE_NOT_FOUND' });
};

export const importOptionalModule: typeof NodeHost.importOptionalModule = async (name) => loadOptionalModule(name);
