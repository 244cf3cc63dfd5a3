import * as core from '@mie/core';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as attention from './index';

it('runs the README example as written', async () => {
  const [example] = typeScriptBlocks(packageReadme(__dirname));
  const logs = await runExample(example, { '@mie/core': core, '@mie/attention': attention });
  expect(logs).toEqual(['2x10x64 2x8x10x10 10']);
});
