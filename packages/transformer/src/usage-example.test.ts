import * as core from '@mie/core';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as transformer from './index';

it('runs the README example as written', async () => {
  const [example] = typeScriptBlocks(packageReadme(__dirname));
  const logs = await runExample(example, { '@mie/core': core, '@mie/transformer': transformer });
  expect(logs).toEqual(['2x3x100 2']);
});
