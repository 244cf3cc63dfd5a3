/** The browser twin of model-location.ts (package.json "browser"): a page must say where the files are. */
import { MieConfigError } from '@mie/core';

/** In a browser the bundled files are wherever the page serves them: pass their URL. */
export function bundledModelSource(): string {
  throw new MieConfigError(
    '@mie/g2p-en: in a browser, serve the files of node_modules/@mie/g2p-en/model/ (config.json, model.safetensors) and pass their folder: loadG2P({ url: "/g2p-en/" }) or pronounce(words, { url })',
  );
}
