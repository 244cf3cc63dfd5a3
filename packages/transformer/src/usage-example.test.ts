import * as core from '@mie/core';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as transformer from './index';

/** What a block prints: the `// ...` comment of each `console.log` line. */
const expectedLogs = (block: string) => [...block.matchAll(/console\.log\(.*\); \/\/ (.*)$/gm)].map((match) => match[1]);

describe('README examples', () => {
  const blocks = typeScriptBlocks(packageReadme(__dirname));
  it('has the examples this test expects', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(2);
    for (const block of blocks) expect(expectedLogs(block).length).toBeGreaterThan(0);
  });
  it.each(blocks.map((block, i) => [i, block]))('runs example %i as written', async (_i, block) => {
    const logs = await runExample(block as string, { '@mie/core': core, '@mie/transformer': transformer });
    expect(logs).toEqual(expectedLogs(block as string));
  });
});
