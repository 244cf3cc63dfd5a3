/** Where the bundled model is in Node: the package's own `model/` folder. */
import * as path from 'node:path';

/** The folder holding the bundled `config.json` and `model.safetensors`. */
export function bundledModelSource(): string {
  return path.join(__dirname, '..', 'model');
}
