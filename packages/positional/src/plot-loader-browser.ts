/** The browser's version of plot-loader.ts: the plotter the page registered by importing '@mie/plot'. */
import { registeredPlotter } from '@mie/core';
import type * as NodeLoader from './plot-loader';

export const plotter: typeof NodeLoader.plotter = (caller) => registeredPlotter(caller);
