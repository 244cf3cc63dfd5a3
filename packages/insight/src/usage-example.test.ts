import * as core from '@mie/core';
import * as transformer from '@mie/transformer';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as insight from './index';

it('runs the README example as written', async () => {
  const [example] = typeScriptBlocks(packageReadme(__dirname));
  const logs = await runExample(example, { '@mie/core': core, '@mie/transformer': transformer, '@mie/insight': insight });
  expect(logs).toEqual(['1x4x4x4 embeddings,layer 0,layer 1 1x4x20']);
});
