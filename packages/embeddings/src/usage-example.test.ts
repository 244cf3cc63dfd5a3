// Named so that npm's packer (which always ships files named readme*) leaves this test out of the tarball.
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ts from 'typescript';
import { setBackend, tf } from '@mie/core';
import * as embeddings from './index';

// The README's example must run as written: its first ```ts block is compiled and executed, with
// '@mie/embeddings' resolved to this package's source.
const readme = fs.readFileSync(path.join(__dirname, '../README.md'), 'utf8');
const examples = [...readme.matchAll(/```ts\n([\s\S]*?)```/g)].map((match) => match[1]);

describe('README examples', () => {
  beforeAll(async () => {
    await setBackend('cpu'); // the examples switch to wasm themselves
  });

  it.each([
    ['TokenEmbedding', 0, [[[2, 4, 64], [2, 4, 1000]]]],
    ['PatchEmbedding', 1, [[[2, 20, 64], 20]]],
  ])('the %s example runs as written, prints the documented shapes and leaks no tensor', async (_name, index, expected) => {
    const example = examples[index as number] ?? '';
    expect(example).toContain("from '@mie/embeddings'");
    const { outputText } = ts.transpileModule(example, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 },
    });
    const load = (name: string): unknown => (name === '@mie/embeddings' ? embeddings : jest.requireActual(name));
    const printed: unknown[][] = [];
    const log = jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => {
      printed.push(args);
    });
    const before = tf.memory().numTensors;
    try {
      // The example uses top-level await (an ES module); run it inside an async function.
      const run = new Function('require', 'exports', `return (async () => {\n${outputText}\n})();`);
      await run(load, {});
    } finally {
      log.mockRestore();
    }
    expect(printed).toEqual(expected);
    expect(tf.memory().numTensors).toBe(before);
    expect(tf.getBackend()).toBe('wasm');
  });
});
