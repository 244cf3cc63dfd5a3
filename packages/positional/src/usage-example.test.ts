import * as fs from 'node:fs';
import * as path from 'node:path';
import * as core from '@mie/core';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as positional from './index';

const blocks = typeScriptBlocks(packageReadme(__dirname));

describe('README', () => {
  it('has one TypeScript example, identical to the type-checked copy in src/__tests__', () => {
    expect(blocks).toHaveLength(1);
    expect(blocks[0]).toBe(fs.readFileSync(path.join(__dirname, '__tests__', 'readme-example.mts'), 'utf8'));
  });

  it('runs its example as written', async () => {
    const printed = await runExample(blocks[0], { '@mie/core': core, '@mie/positional': positional });
    expect(printed).toEqual(['2,10,64', '2,10,4,16 2,10,1,16 2,1,64', '2,10,4,16 1,4,10,10', '8 64']);
  });
});
