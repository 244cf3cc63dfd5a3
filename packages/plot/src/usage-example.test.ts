import * as core from '@mie/core';
import { packageReadme, runExample, typeScriptBlocks } from '@mie/test-utils';
import * as plot from './index';

const blocks = typeScriptBlocks(packageReadme(__dirname));

describe('README', () => {
  it('runs its example as written', async () => {
    expect(blocks).toHaveLength(2);
    const printed = await runExample(blocks[0], { '@mie/core': core, '@mie/plot': plot });
    expect(printed).toEqual(['80 78 71', 'true', 'true']);
  });

  it('runs its interpretability example as written, leaking no tensors', async () => {
    const start = core.tf.memory().numTensors;
    const printed = await runExample(blocks[1], { '@mie/core': core, '@mie/plot': plot });
    expect(printed).toEqual(['80 78 71', '24', 'true']);
    expect(core.tf.memory().numTensors).toBe(start);
  });
});
