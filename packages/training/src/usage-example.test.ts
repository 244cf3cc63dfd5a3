import * as core from '@mie/core';
import * as layers from '@mie/layers';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as training from './index';

it('runs the README example as written', async () => {
  const [example] = typeScriptBlocks(packageReadme(__dirname));
  const logs = await runExample(example, { '@mie/core': core, '@mie/layers': layers, '@mie/training': training });
  expect(logs).toEqual(['200 true']);
});
