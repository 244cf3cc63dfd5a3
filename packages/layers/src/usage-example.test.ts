import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as core from '@mie/core';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as layers from './index';

const blocks = typeScriptBlocks(packageReadme(__dirname));

afterAll(async () => {
  core.clearSeed();
  await fsp.rm(path.join(os.tmpdir(), 'mie-readme-classifier'), { recursive: true, force: true });
});

describe('README', () => {
  it('has one TypeScript example, identical to the type-checked copy in src/__tests__', () => {
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toBe(fs.readFileSync(path.join(__dirname, '__tests__', 'readme-example.mts'), 'utf8'));
  });

  it('runs its example as written, and the classifier learns the six labels', async () => {
    // tensor.print() writes to the global console.log: the predictions, then the probabilities.
    const printed: string[] = [];
    const spy = jest.spyOn(console, 'log').mockImplementation((...args: unknown[]) => void printed.push(args.map(String).join(' ')));
    try {
      printed.push(...(await runExample(blocks[0], { '@mie/core': core, '@mie/layers': layers })));
    } finally {
      spy.mockRestore();
    }
    const output = printed.join('\n');
    expect(output).toMatch(/\[0, 1, 2, 0, 1, 2\]/);
    expect(output).toMatch(/Tensor\s+\[\[[\d.e\s-]+,[\d.e\s-]+,[\d.e\s-]+\],/);
  });
});
