/**
 * Finds the plotter for `visualize*` in Node: the one registered (`import '@mie/plot'`), else
 * @mie/plot itself when it is installed (an optional peer), which registers itself on load.
 * Browser bundles get plot-loader-browser.ts (package.json "browser"): there the page imports it.
 */
import { registeredPlotter, type Plotter } from '@mie/core';

export function plotter(caller: string): Plotter {
  try {
    return registeredPlotter(caller);
  } catch (error) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      require('@mie/plot');
    } catch {
      throw error; // not installed: the registry's message says what to do
    }
    return registeredPlotter(caller);
  }
}
