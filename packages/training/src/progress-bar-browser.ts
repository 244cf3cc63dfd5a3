/**
 * The browser's version of progress-bar.ts (package.json "browser"): a page has no terminal, so
 * `progress: 'auto'` gives log lines and `'bar'` falls back to them (on the console).
 */
import type * as NodeBar from './progress-bar';
import { LineReporter } from './progress';

export const terminalIsInteractive: typeof NodeBar.terminalIsInteractive = () => false;

export const createBarReporter: typeof NodeBar.createBarReporter = () => new LineReporter((line) => console.log(line));
